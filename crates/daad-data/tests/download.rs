//! Downloads against a loopback HTTP server, through `download::install`, the function
//! `cargo xtask download` calls: the happy path, a resumed download, a corrupted archive
//! (checksum error, nothing left in dest), tar.gz, an unsafe archive, and the Hugging Face source.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{files_under, sha256_hex, tar_gz_dir, tar_xz_dir, Server};
use daad_data::download::{self, ArchiveSpec, HfSpec, InstallOptions, NoProgress, Source};
use daad_data::{mvtec, synth, Error};

/// A small synthetic category packed as `<name>.tar.xz` (MVTec per-category archive layout).
fn archive(name: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let cfg = synth::SynthConfig {
        categories: vec!["nut".into()],
        size: 32,
        seed: 1,
        n_train: 3,
        n_test_good: 1,
        n_test_defect: 4,
    };
    synth::generate(dir.path(), &cfg).unwrap();
    if name != "nut" {
        std::fs::rename(dir.path().join("nut"), dir.path().join(name)).unwrap();
    }
    tar_xz_dir(dir.path(), name)
}

fn url_source(server: &Server, file: &str, sha: Option<String>) -> Source {
    Source::Url(ArchiveSpec {
        url: format!("{}/{file}", server.url),
        file_name: file.to_string(),
        sha256: sha,
    })
}

#[test]
fn happy_path_installs_a_loadable_category() {
    let bytes = archive("bottle");
    let sha = sha256_hex(&bytes);
    let server =
        Server::start(HashMap::from([("/bottle.tar.xz".to_string(), bytes)]), None, vec![]);
    let dest = tempfile::tempdir().unwrap();
    let got = download::install(
        &url_source(&server, "bottle.tar.xz", Some(sha.clone())),
        dest.path(),
        "mvtec",
        &InstallOptions::default(),
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(got.sha256, sha);
    assert_eq!(got.paths, vec![dest.path().join("mvtec/bottle")]);
    assert!(got.archive.is_none(), "archive removed after extraction by default");
    let idx = mvtec::index_category(&dest.path().join("mvtec"), "bottle").unwrap();
    assert_eq!(idx.train.len(), 3);
    assert_eq!(idx.test.len(), 5);
    assert!(idx.has_masks());
    // No temporary folders remain.
    let leftovers: Vec<_> = files_under(dest.path())
        .into_iter()
        .filter(|p| {
            p.to_string_lossy().contains(".extract-") || p.to_string_lossy().ends_with(".part")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn resumed_download_uses_a_range_request() {
    let bytes = archive("nut");
    let sha = sha256_hex(&bytes);
    let half = bytes.len() / 2;
    let server = Server::start(
        HashMap::from([("/nut.tar.xz".to_string(), bytes.clone())]),
        Some(half),
        vec![],
    );
    let dest = tempfile::tempdir().unwrap();
    let src = url_source(&server, "nut.tar.xz", Some(sha));
    let opts = InstallOptions { keep_archive: true, ..Default::default() };

    // First attempt: the server drops the connection halfway.
    let e = download::install(&src, dest.path(), "mvtec", &opts, &mut NoProgress).unwrap_err();
    assert!(matches!(e, Error::Http { .. }), "{e}");
    let part = dest.path().join("downloads/nut.tar.xz.part");
    assert_eq!(std::fs::metadata(&part).unwrap().len() as usize, half);
    assert!(!dest.path().join("mvtec/nut").exists(), "no half dataset is installed");

    // Second attempt resumes from the half.
    let got = download::install(&src, dest.path(), "mvtec", &opts, &mut NoProgress).unwrap();
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].range, None);
    assert_eq!(seen[1].range.as_deref(), Some(format!("bytes={half}-").as_str()));
    assert_eq!(std::fs::read(got.archive.unwrap()).unwrap(), bytes);
    assert!(!part.exists());
    mvtec::index_category(&dest.path().join("mvtec"), "nut").unwrap();
}

#[test]
fn corrupted_archive_is_a_checksum_error_and_leaves_nothing() {
    let good = archive("nut");
    let sha = sha256_hex(&good);
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    let server = Server::start(HashMap::from([("/nut.tar.xz".to_string(), bad)]), None, vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("data");
    let e = download::install(
        &url_source(&server, "nut.tar.xz", Some(sha.clone())),
        &dest,
        "mvtec",
        &InstallOptions::default(),
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(matches!(e, Error::Checksum { .. }), "{e}");
    let t = e.to_string();
    assert!(t.contains(&sha) && t.contains("nut.tar.xz"), "{t}");
    assert!(
        !dest.exists() || files_under(&dest).is_empty(),
        "left behind: {:?}",
        files_under(&dest)
    );

    // The same when dest already existed: it is left as it was (empty).
    std::fs::create_dir_all(&dest).unwrap();
    download::install(
        &url_source(&server, "nut.tar.xz", Some(sha)),
        &dest,
        "mvtec",
        &InstallOptions::default(),
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(files_under(&dest).is_empty(), "left behind: {:?}", files_under(&dest));
}

#[test]
fn missing_checksum_requires_opt_in() {
    let bytes = archive("nut");
    let server =
        Server::start(HashMap::from([("/nut.tar.xz".to_string(), bytes.clone())]), None, vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("d");
    let e = download::install(
        &url_source(&server, "nut.tar.xz", None),
        &dest,
        "mvtec",
        &InstallOptions::default(),
        &mut NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("--sha256"), "{e}");
    assert!(!dest.exists());
    let opts = InstallOptions { allow_unverified: true, ..Default::default() };
    let got = download::install(
        &url_source(&server, "nut.tar.xz", None),
        &dest,
        "mvtec",
        &opts,
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(got.sha256, sha256_hex(&bytes));
}

#[test]
fn tar_gz_and_only_filter() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = synth::SynthConfig {
        categories: vec!["cap".into(), "nut".into()],
        size: 16,
        seed: 2,
        n_train: 2,
        n_test_good: 1,
        n_test_defect: 1,
    };
    synth::generate(&dir.path().join("all"), &cfg).unwrap();
    let bytes = tar_gz_dir(dir.path(), "all");
    let server =
        Server::start(HashMap::from([("/x.tar.gz".to_string(), bytes.clone())]), None, vec![]);
    let dest = tempfile::tempdir().unwrap();
    let opts = InstallOptions { only: Some("all".into()), ..Default::default() };
    let got = download::install(
        &url_source(&server, "x.tar.gz", Some(sha256_hex(&bytes))),
        dest.path(),
        "sets",
        &opts,
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(got.paths, vec![dest.path().join("sets/all")]);
    mvtec::index_category(&dest.path().join("sets/all"), "cap").unwrap();
    // Filtering on a name the archive lacks is an error naming it.
    let opts = InstallOptions { only: Some("zipper".into()), ..Default::default() };
    let e = download::install(
        &url_source(&server, "x.tar.gz", Some(sha256_hex(&bytes))),
        dest.path(),
        "sets2",
        &opts,
        &mut NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("zipper"), "{e}");
}

#[test]
fn archive_escaping_its_folder_is_rejected() {
    // A hand-built tar whose entry name is "../evil.txt".
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    {
        let name = b"../evil.txt";
        let raw = header.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name);
    }
    header.set_cksum();
    let mut tarball = Vec::new();
    tarball.extend_from_slice(header.as_bytes());
    tarball.extend_from_slice(b"evil");
    tarball.resize(tarball.len() + 508 + 1024, 0);
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("evil.tar");
    std::fs::write(&a, &tarball).unwrap();
    let into = dir.path().join("into");
    let e = download::extract_archive(&a, &into, None, &mut NoProgress).unwrap_err().to_string();
    assert!(e.contains("escapes"), "{e}");
    assert!(!dir.path().join("evil.txt").exists());
    assert!(files_under(&into).is_empty());
}

#[test]
fn corrupt_archive_with_matching_checksum_installs_nothing() {
    // Extraction errors (e.g. --no-verify of a broken file) leave no half dataset either.
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("broken.tar.xz");
    let good = archive("nut");
    std::fs::write(&a, &good[..good.len() * 2 / 3]).unwrap();
    let into = dir.path().join("mvtec");
    let e = download::extract_archive(&a, &into, None, &mut NoProgress).unwrap_err();
    assert!(matches!(e, Error::Archive { .. }), "{e}");
    assert!(e.to_string().contains(&a.display().to_string()));
    assert!(files_under(&into).is_empty(), "{:?}", files_under(&into));
}

fn hf_server(repo: &str, file: &str, bytes: Vec<u8>, etag: &str) -> Server {
    let path = format!("/datasets/{repo}/resolve/main/{file}");
    Server::start(
        HashMap::from([(path, bytes)]),
        None,
        vec![
            ("ETag".into(), format!("\"{etag}\"")),
            ("X-Repo-Commit".into(), "0123456789abcdef0123456789abcdef01234567".into()),
        ],
    )
}

#[test]
fn hugging_face_source_against_loopback_hub() {
    let bytes = archive("carpet");
    let sha = sha256_hex(&bytes);
    // Like the Hub for LFS files: the etag is the content's sha256.
    let server = hf_server("someone/mvtec-ad", "carpet.tar.xz", bytes, &sha);
    let dest = tempfile::tempdir().unwrap();
    let src = Source::HuggingFace(HfSpec {
        repo: "someone/mvtec-ad".into(),
        file: "carpet.tar.xz".into(),
        revision: None,
        endpoint: Some(server.url.clone()),
        sha256: None,
    });
    let got =
        download::install(&src, dest.path(), "mvtec", &InstallOptions::default(), &mut NoProgress)
            .unwrap();
    assert_eq!(got.sha256, sha);
    mvtec::index_category(&dest.path().join("mvtec"), "carpet").unwrap();
}

#[test]
fn hugging_face_checksum_mismatch_is_reported() {
    let bytes = archive("carpet");
    let wrong = "0".repeat(64);
    let server = hf_server("someone/mvtec-ad", "carpet.tar.xz", bytes, &wrong);
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("d");
    let src = Source::HuggingFace(HfSpec {
        repo: "someone/mvtec-ad".into(),
        file: "carpet.tar.xz".into(),
        revision: None,
        endpoint: Some(server.url.clone()),
        sha256: None,
    });
    let e = download::install(&src, &dest, "mvtec", &InstallOptions::default(), &mut NoProgress)
        .unwrap_err();
    assert!(matches!(e, Error::Checksum { .. }), "{e}");
    assert!(!dest.join("mvtec/carpet").exists());
}

#[test]
fn bad_sha_argument_is_rejected() {
    let e = download::download_file(
        "http://127.0.0.1:9/x",
        Path::new("/nonexistent/x"),
        Some("xyz"),
        &mut NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("xyz"), "{e}");
}
