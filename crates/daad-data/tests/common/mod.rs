//! Shared test helpers: a loopback HTTP server that honours Range requests, and small file writers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One request the server saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
}

/// A minimal HTTP/1.1 server on 127.0.0.1 serving fixed bodies by path.
///
/// Honours `Range: bytes=N-` (and `N-M`) with 206 + Content-Range, like real file hosts. If
/// `truncate_first` is set, the first full-body response announces the full Content-Length but
/// sends only that many bytes and then closes the connection (a dropped download).
pub struct Server {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    handle: Option<JoinHandle<()>>,
    stop: Arc<Mutex<bool>>,
    addr: std::net::SocketAddr,
}

impl Server {
    pub fn start(
        files: HashMap<String, Vec<u8>>,
        truncate_first: Option<usize>,
        extra_headers: Vec<(String, String)>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(Mutex::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            let truncate = Arc::new(Mutex::new(truncate_first));
            let files = Arc::new(files);
            let extra = Arc::new(extra_headers);
            for stream in listener.incoming() {
                if *stop2.lock().unwrap() {
                    break;
                }
                let Ok(stream) = stream else { continue };
                // One thread per connection: clients keep idle connections open in their pools.
                let (files, truncate, seen, extra) =
                    (files.clone(), truncate.clone(), seen2.clone(), extra.clone());
                std::thread::spawn(move || handle_conn(stream, &files, &truncate, &seen, &extra));
            }
        });
        Server { url: format!("http://{addr}"), seen, handle: Some(handle), stop, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        *self.stop.lock().unwrap() = true;
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn handle_conn(
    stream: TcpStream,
    files: &HashMap<String, Vec<u8>>,
    truncate: &Mutex<Option<usize>>,
    seen: &Mutex<Vec<Seen>>,
    extra: &[(String, String)],
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut range = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("range") {
                    range = Some(v.trim().to_string());
                }
            }
        }
        seen.lock().unwrap().push(Seen { path: path.clone(), range: range.clone() });
        let mut extra_h = String::new();
        for (k, v) in extra {
            extra_h.push_str(&format!("{k}: {v}\r\n"));
        }
        let Some(body) = files.get(&path) else {
            let _ = write!(stream, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            continue;
        };
        let total = body.len();
        let parsed = range.as_deref().and_then(|r| r.strip_prefix("bytes=")).and_then(|r| {
            let (a, b) = r.split_once('-')?;
            let a: usize = a.parse().ok()?;
            let b: usize = if b.is_empty() { total.saturating_sub(1) } else { b.parse().ok()? };
            Some((a, b.min(total.saturating_sub(1))))
        });
        match parsed {
            Some((a, _)) if a >= total => {
                let _ = write!(stream, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{total}\r\nContent-Length: 0\r\n\r\n");
            }
            Some((a, b)) => {
                let part = &body[a..=b];
                let _ = write!(
                    stream,
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {a}-{b}/{total}\r\nAccept-Ranges: bytes\r\n{extra_h}\r\n",
                    part.len()
                );
                let _ = stream.write_all(part);
            }
            None => {
                let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nAccept-Ranges: bytes\r\n{extra_h}\r\n");
                let cut = truncate.lock().unwrap().take();
                if let Some(n) = cut {
                    let _ = stream.write_all(&body[..n]);
                    let _ = stream.flush();
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    return;
                }
                let _ = stream.write_all(body);
            }
        }
        let _ = stream.flush();
    }
}

/// sha256 hex of bytes.
pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// A tar.xz of the folder `root/name` (as top-level `name/`).
pub fn tar_xz_dir(root: &Path, name: &str) -> Vec<u8> {
    let enc = xz2::write::XzEncoder::new(Vec::new(), 3);
    let mut b = tar::Builder::new(enc);
    b.append_dir_all(name, root.join(name)).unwrap();
    b.into_inner().unwrap().finish().unwrap()
}

/// A tar.gz of the folder `root/name` (as top-level `name/`).
pub fn tar_gz_dir(root: &Path, name: &str) -> Vec<u8> {
    let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(enc);
    b.append_dir_all(name, root.join(name)).unwrap();
    b.into_inner().unwrap().finish().unwrap()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
                out.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Reads all of a reader (helper for tests that want bytes).
pub fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).unwrap();
    v
}

/// xz-compressed bytes (level 1: tests want speed).
pub fn xz(bytes: &[u8]) -> Vec<u8> {
    let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}
