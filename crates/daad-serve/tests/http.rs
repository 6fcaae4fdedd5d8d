//! The HTTP contract with a fake scorer: endpoints, response shape, bad input, limits,
//! authentication, batching, timeouts and graceful shutdown.

mod common;

use std::time::Duration;

use anyhow::{ensure, Result};
use base64::Engine as _;
use common::{get, multipart, png, post, start, FakeScorer};
use daad_serve::ServeOptions;

#[test]
fn endpoints_answer_and_predict_has_every_field() -> Result<()> {
    let s = start(FakeScorer::new(0), ServeOptions::default())?;
    assert_eq!(get(&s.url("/healthz"), &[])?.status, 200);
    assert_eq!(get(&s.url("/readyz"), &[])?.json()?["status"], "ready");
    let m = get(&s.url("/v1/model"), &[])?.json()?;
    assert_eq!(m["model"]["run_id"], "0000");
    assert_eq!(m["model"]["config"]["fake"], true);
    assert_eq!(m["server"]["max_batch"], 16);
    let page = get(&s.url("/"), &[])?;
    ensure!(
        page.status == 200 && page.body.contains("<html") && page.body.contains("data-live=\"1\"")
    );
    ensure!(!page.body.contains("{{"), "unfilled placeholder in the page");
    assert_eq!(get(&s.url("/v1/report"), &[])?.json()?["images"].as_array().map(Vec::len), Some(0));

    // White image: fake score 1.0 -> anomalous against the fake threshold 0.5.
    let r = post(&s.url("/v1/predict"), "image/png", &png(20, 10, 255), &[])?;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json()?;
    let res = &v["results"][0];
    assert_eq!(res["score"], 1.0);
    assert_eq!(res["r"], 1.0);
    assert_eq!(res["verdict"], "anomalous");
    assert_eq!(res["threshold"], 0.5);
    assert_eq!((res["width"].as_u64(), res["height"].as_u64()), (Some(20), Some(10)));
    ensure!(res["timings"]["model_ms"].is_f64() && res["timings"]["batch_size"] == 1, "{res}");
    ensure!(v["timings"]["total_ms"].is_f64() && v["model"]["run_id"] == "0000", "{v}");
    ensure!(res.get("heatmap_png").is_none(), "no heatmap unless asked");

    // ?heatmap=1: base64 PNGs at the input's size.
    let v =
        post(&s.url("/v1/predict?heatmap=1&reconstruction=1"), "image/png", &png(20, 10, 0), &[])?
            .json()?;
    let res = &v["results"][0];
    assert_eq!(res["verdict"], "normal");
    let b64 = res["heatmap_png"].as_str().unwrap();
    let heat = image::load_from_memory(&base64::engine::general_purpose::STANDARD.decode(b64)?)?;
    assert_eq!((heat.width(), heat.height()), (20, 10));
    ensure!(res["map_png"].is_string() && res["reconstruction_png"].is_string(), "{res}");

    // Multipart with three images, answered in order.
    let (ct, body) = multipart(&[
        ("a.png", &png(4, 4, 0)),
        ("b.png", &png(4, 4, 255)),
        ("c.png", &png(4, 4, 0)),
    ]);
    let v = post(&s.url("/v1/predict"), &ct, &body, &[])?.json()?;
    let names: Vec<&str> =
        v["results"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a.png", "b.png", "c.png"]);
    assert_eq!(v["results"][1]["verdict"], "anomalous");

    let metrics = get(&s.url("/metrics"), &[])?.body;
    ensure!(metrics.contains("daad_requests_total 3"), "{metrics}");
    ensure!(metrics.contains("daad_images_scored_total 5"), "{metrics}");
    ensure!(metrics.contains("daad_batch_size_bucket"), "{metrics}");
    assert_eq!(get(&s.url("/nope"), &[])?.json()?["error"]["code"], "not_found");
    let r = get(&s.url("/v1/predict"), &[])?;
    assert_eq!((r.status, r.json()?["error"]["code"].clone()), (405, "method_not_allowed".into()));
    s.stop()
}

#[test]
fn bad_input_is_a_named_4xx_and_the_server_keeps_serving() -> Result<()> {
    let opts =
        ServeOptions { max_body_bytes: 64 << 10, max_image_side: 512, ..ServeOptions::default() };
    let s = start(FakeScorer::new(0), opts)?;
    let good = png(16, 16, 128);
    let truncated = &good[..good.len() - 20];
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&[1, 0, 1, 0, 0, 0, 0, 0x3b]);
    let (ct_empty, empty_mp) = multipart(&[]);
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("garbage", "image/png", b"this is not an image at all".to_vec(), 400, "not_an_image"),
        ("truncated", "image/png", truncated.to_vec(), 400, "bad_image"),
        ("gif", "image/png", gif, 415, "unsupported_image_format"),
        ("text", "text/plain", good.clone(), 415, "unsupported_content_type"),
        ("empty", "image/png", Vec::new(), 400, "empty_body"),
        ("oversized body", "image/png", vec![0u8; 100 << 10], 413, "body_too_large"),
        // Far larger than socket buffers: the client must still read the 413, not a reset.
        ("much oversized body", "image/png", vec![0u8; 8 << 20], 413, "body_too_large"),
        ("huge image", "image/png", png(600, 8, 0), 413, "image_too_large"),
        (
            "bad multipart",
            "multipart/form-data; boundary=x",
            b"nonsense".to_vec(),
            400,
            "bad_multipart",
        ),
        ("empty multipart", &ct_empty, empty_mp, 400, "no_images"),
    ];
    for (what, ct, body, status, code) in &cases {
        let r = post(&s.url("/v1/predict"), ct, body, &[])?;
        assert_eq!(r.status, *status, "{what}: {}", r.body);
        let v = r.json()?;
        assert_eq!(v["error"]["code"], *code, "{what}: {v}");
        ensure!(v["error"]["message"].as_str().is_some_and(|m| m.len() > 10), "{what}: {v}");
        // The next good request still works.
        assert_eq!(
            post(&s.url("/v1/predict"), "image/png", &good, &[])?.status,
            200,
            "after {what}"
        );
    }
    let metrics = get(&s.url("/metrics"), &[])?.body;
    let want = format!("daad_request_errors_total{{class=\"client\"}} {}", cases.len());
    ensure!(metrics.contains(&want), "{metrics}");
    s.stop()
}

#[test]
fn bearer_token_guards_the_api_but_not_health() -> Result<()> {
    let opts = ServeOptions { token: Some("s3cret".into()), ..ServeOptions::default() };
    ensure!(!format!("{opts:?}").contains("s3cret"), "Debug shows the token");
    let s = start(FakeScorer::new(0), opts)?;
    assert_eq!(get(&s.url("/healthz"), &[])?.status, 200);
    for path in ["/v1/model", "/metrics", "/v1/report"] {
        let r = get(&s.url(path), &[])?;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.json()?["error"]["code"], "unauthorized");
        assert_eq!(get(&s.url(path), &[("Authorization", "Bearer wrong")])?.status, 401);
        assert_eq!(get(&s.url(path), &[("Authorization", "Bearer s3cret")])?.status, 200, "{path}");
    }
    let r = post(&s.url("/v1/predict"), "image/png", &png(4, 4, 0), &[])?;
    assert_eq!(r.status, 401);
    let r = post(
        &s.url("/v1/predict"),
        "image/png",
        &png(4, 4, 0),
        &[("Authorization", "Bearer s3cret")],
    )?;
    assert_eq!(r.status, 200);
    s.stop()
}

#[test]
fn token_file_is_read_and_checked() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let p = dir.path().join("token");
    std::fs::write(&p, "abc123\n")?;
    assert_eq!(daad_serve::read_token_file(&p)?, "abc123");
    std::fs::write(&p, "  \n")?;
    ensure!(daad_serve::read_token_file(&p).is_err());
    ensure!(daad_serve::read_token_file(&dir.path().join("missing")).is_err());
    Ok(())
}

#[test]
fn concurrent_requests_share_batches() -> Result<()> {
    let scorer = FakeScorer::new(40);
    let opts = ServeOptions {
        max_batch: 8,
        max_wait: Duration::from_millis(30),
        ..ServeOptions::default()
    };
    let s = start(scorer.clone(), opts)?;
    let url = s.url("/v1/predict");
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || post(&url, "image/png", &png(8, 8, i * 30), &[]))
        })
        .collect();
    let mut sizes = Vec::new();
    for (i, t) in threads.into_iter().enumerate() {
        let r = t.join().unwrap()?;
        assert_eq!(r.status, 200);
        let v = r.json()?;
        // Each request gets its own image's score back, whatever batch it rode in.
        let want = (i as u8 * 30) as f64 / 255.0;
        ensure!((v["results"][0]["score"].as_f64().unwrap() - want).abs() < 1e-9, "{v}");
        sizes.push(v["results"][0]["timings"]["batch_size"].as_u64().unwrap());
    }
    let batches = scorer.batches.lock().unwrap().clone();
    assert_eq!(batches.iter().sum::<usize>(), 8);
    ensure!(batches.iter().all(|&b| b <= 8));
    ensure!(batches.len() < 8, "8 concurrent requests were never batched: {batches:?}");
    ensure!(sizes.iter().any(|&b| b > 1), "{sizes:?}");
    s.stop()
}

#[test]
fn slow_requests_time_out_and_excess_ones_are_refused() -> Result<()> {
    let opts = ServeOptions {
        request_timeout: Duration::from_millis(100),
        max_concurrent: 1,
        ..ServeOptions::default()
    };
    let s = start(FakeScorer::new(400), opts)?;
    let url = s.url("/v1/predict");
    let first = {
        let url = url.clone();
        std::thread::spawn(move || post(&url, "image/png", &png(4, 4, 0), &[]))
    };
    std::thread::sleep(Duration::from_millis(30));
    let second = post(&url, "image/png", &png(4, 4, 0), &[])?;
    assert_eq!(second.status, 503, "{}", second.body);
    assert_eq!(second.json()?["error"]["code"], "busy");
    let first = first.join().unwrap()?;
    assert_eq!(first.status, 504, "{}", first.body);
    assert_eq!(first.json()?["error"]["code"], "timeout");
    s.stop()
}

#[test]
fn shutdown_finishes_requests_in_flight() -> Result<()> {
    let mut s = start(FakeScorer::new(300), ServeOptions::default())?;
    let url = s.url("/v1/predict");
    let inflight = {
        let url = url.clone();
        std::thread::spawn(move || post(&url, "image/png", &png(4, 4, 255), &[]))
    };
    std::thread::sleep(Duration::from_millis(80));
    s.trigger_stop();
    let r = inflight.join().unwrap()?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()?["results"][0]["score"], 1.0);
    let addr = s.addr;
    s.stop()?;
    ensure!(std::net::TcpStream::connect(addr).is_err(), "still listening after shutdown");
    Ok(())
}

#[test]
fn a_lone_request_does_not_wait_for_a_batch() -> Result<()> {
    let opts = ServeOptions { max_wait: Duration::from_millis(500), ..ServeOptions::default() };
    let s = start(FakeScorer::new(0), opts)?;
    for _ in 0..3 {
        let v = post(&s.url("/v1/predict"), "image/png", &png(4, 4, 0), &[])?.json()?;
        let queue_ms = v["results"][0]["timings"]["queue_ms"].as_f64().unwrap();
        ensure!(queue_ms < 250.0, "a lone image waited {queue_ms} ms for batch-mates");
    }
    s.stop()
}

#[test]
fn oversized_chunked_body_is_refused_with_413() -> Result<()> {
    use std::io::{Read, Write};
    let opts = ServeOptions { max_body_bytes: 64 << 10, ..ServeOptions::default() };
    let s = start(FakeScorer::new(0), opts)?;
    let mut tcp = std::net::TcpStream::connect(s.addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        tcp,
        "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )?;
    let chunk = vec![b'x'; 16 << 10];
    for _ in 0..16 {
        write!(tcp, "{:x}\r\n", chunk.len())?;
        tcp.write_all(&chunk)?;
        tcp.write_all(b"\r\n")?;
    }
    tcp.write_all(b"0\r\n\r\n")?;
    let mut resp = String::new();
    tcp.read_to_string(&mut resp)?;
    ensure!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    ensure!(resp.contains("body_too_large"), "{resp}");
    s.stop()
}
