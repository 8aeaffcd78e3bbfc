//! The `files` service end to end, through the `services` test plugin: storage, checks,
//! serving, uploads refused while they stream (413/415) and names that cannot escape.

use std::path::PathBuf;

use lutetia_tests::{Backend, Host, TestDb, on_both_backends};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_lutetia-test-host");
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

/// Starts the host with its files folder inside the test's scratch folder.
async fn start(db: &TestDb) -> (Host, PathBuf) {
    let files = db.dir().join("files");
    let config = db.dir().join("lutetia.toml");
    std::fs::write(
        &config,
        format!("files-dir = {:?}\n", files.display().to_string()),
    )
    .expect("config");
    let host = Host::start(BIN, db, &["--config", config.to_str().expect("utf-8 path")]).await;
    (host, files)
}

async fn put(host: &Host, name: &str, content_type: &str, data: &[u8]) -> (u16, String) {
    let url = format!(
        "{}?name={}&type={}",
        host.url("/p/services/files/put"),
        name.replace('/', "%2F"),
        content_type.replace('/', "%2F").replace('+', "%2B")
    );
    let response = host
        .client
        .post(url)
        .body(data.to_vec())
        .send()
        .await
        .expect("request");
    (response.status().as_u16(), response.text().await.expect("body"))
}

on_both_backends! {
    async fn stored_files_are_served_safely(backend: Backend) {
        let db = TestDb::new(backend).await;
        let (host, files) = start(&db).await;
        let (status, body) = put(&host, "photo.png", "image/png", PNG).await;
        assert_eq!(status, 200, "{body}");
        assert!(files.join("services").join("photo.png").is_file());

        let response = host.client.get(host.url("/p/services/_files/photo.png")).send().await.expect("get");
        assert_eq!(response.status(), 200);
        let h = response.headers().clone();
        assert_eq!(h["content-type"], "image/png");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(h["content-security-policy"].to_str().unwrap_or("").contains("default-src 'none'"));
        assert_eq!(h["content-disposition"], "inline; filename=\"photo.png\"");
        let etag = h["etag"].to_str().expect("etag").to_owned();
        assert_eq!(response.bytes().await.expect("bytes").as_ref(), PNG);
        let again = host.client.get(host.url("/p/services/_files/photo.png"))
            .header("if-none-match", &etag).send().await.expect("get");
        assert_eq!(again.status(), 304);

        // Anything not an image, a PDF or plain text is a download.
        let (status, body) = put(&host, "notes.txt", "text/plain", b"hello").await;
        assert_eq!(status, 200, "{body}");
        let (status, _) = put(&host, "doc.pdf", "application/pdf", b"%PDF-1.7\n%%EOF\n").await;
        assert_eq!(status, 200);
        let (_, list) = host.get("/p/services/files/list?prefix=").await;
        assert_eq!(list, r#"["doc.pdf","notes.txt","photo.png"]"#);

        // Type and content checks, size and total quota.
        assert_eq!(put(&host, "x.zip", "application/zip", b"PK\x03\x04").await.0, 400);
        assert_eq!(put(&host, "fake.png", "image/png", b"<script>alert(1)</script>").await.0, 400);
        assert_eq!(put(&host, "fake.jpg", "image/jpeg", PNG).await.0, 400);
        assert_eq!(put(&host, "big.txt", "text/plain", &vec![b'a'; 65_537]).await.0, 429);
        for i in 0..3 {
            assert_eq!(put(&host, &format!("t{i}.txt"), "text/plain", &vec![b'a'; 60_000]).await.0, 200);
        }
        assert_eq!(put(&host, "t3.txt", "text/plain", &vec![b'a'; 60_000]).await.0, 429);
        // Replacing a file counts its new size only.
        assert_eq!(put(&host, "t2.txt", "text/plain", &vec![b'b'; 60_000]).await.0, 200);

        let deleted = host.client.post(host.url("/p/services/files/delete?name=photo.png")).send().await.expect("delete");
        assert_eq!(deleted.text().await.expect("body"), "true");
        assert_eq!(host.get("/p/services/_files/photo.png").await.0, 404);
        // Plugins without the grant have no files route.
        assert_eq!(host.get("/p/hello/_files/photo.png").await.0, 404);
    }

    async fn names_cannot_escape(backend: Backend) {
        let db = TestDb::new(backend).await;
        let (host, files) = start(&db).await;
        std::fs::create_dir_all(&files).expect("files dir");
        std::fs::write(files.join("secret"), "outside the plugin's folder").expect("secret");
        for name in ["../x", "../../x", "a/b", "/etc/passwd", "..", ".hidden", "a\\b", ""] {
            let (status, body) = put(&host, name, "text/plain", b"x").await;
            assert_eq!(status, 400, "{name}: {body}");
        }
        assert!(!db.dir().join("x").exists() && !files.join("x").exists());
        for path in ["%2e%2e%2fsecret", "..%2fsecret", "%2e%2e", ".hidden", "%2Fetc%2Fpasswd"] {
            let (status, body) = host.get(&format!("/p/services/_files/{path}")).await;
            assert_eq!(status, 404, "{path}");
            assert!(!body.contains("outside"), "{path}");
        }
        // A symlink planted in the plugin's folder does not lead out of the files folder.
        assert_eq!(put(&host, "link.txt", "text/plain", b"x").await.0, 200);
        let link = files.join("services").join("link.txt");
        std::fs::remove_file(&link).expect("remove");
        std::os::unix::fs::symlink(files.join("secret"), &link).expect("symlink");
        let (status, body) = host.get("/p/services/_files/link.txt").await;
        assert_ne!(status, 200);
        assert!(!body.contains("outside"), "{body}");
    }

    async fn multipart_upload_is_parsed_and_stored(backend: Backend) {
        let db = TestDb::new(backend).await;
        let (host, _) = start(&db).await;
        let body = form_body("B0undary", "image/png", PNG);
        let response = host.client.post(host.url("/p/services/upload/store"))
            .header("content-type", "multipart/form-data; boundary=B0undary")
            .body(body).send().await.expect("upload");
        assert_eq!(response.status(), 200);
        let stored = response.text().await.expect("body");
        assert!(stored.contains(r#""name":"pothole.png""#), "{stored}");
        let served = host.client.get(host.url("/p/services/_files/pothole.png")).send().await.expect("get");
        assert_eq!(served.bytes().await.expect("bytes").as_ref(), PNG);
    }

    async fn hello_demo_uploads_and_shows_a_photo(backend: Backend) {
        let db = TestDb::new(backend).await;
        let (host, _) = start(&db).await;
        let (_, page) = host.get("/p/hello/photos").await;
        assert!(page.contains(r#"enctype="multipart/form-data""#), "{page}");
        assert!(page.contains(r#"type="file""#) && page.contains("accept="), "{page}");
        let response = host.client.post(host.url("/p/hello/photos"))
            .header("content-type", "multipart/form-data; boundary=B0undary")
            .body(form_body("B0undary", "image/png", PNG)).send().await.expect("upload");
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()["location"], "/p/hello/photos");
        let (_, page) = host.get("/p/hello/photos").await;
        assert!(page.contains(r#"<img src="/p/hello/_files/photo-pothole.png""#), "{page}");
        let served = host.client.get(host.url("/p/hello/_files/photo-pothole.png")).send().await.expect("get");
        assert_eq!(served.headers()["content-type"], "image/png");
    }
}

/// A browser-shaped form: a text field, a file, an empty file input.
fn form_body(boundary: &str, content_type: &str, data: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\nRue de Rivoli\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"pothole.png\"\r\n\
         Content-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"other\"; filename=\"\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n\r\n--{boundary}--\r\n"
        )
        .as_bytes(),
    );
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_body_reaches_the_plugin_byte_for_byte() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (host, _) = start(&db).await;
    // Over the host's default 2 MiB? No: under the grant's 64 KiB + overhead, with binary
    // content that contains CRLF and dashes, and an epilogue after the closing boundary.
    let mut data: Vec<u8> = (0..=255u8).cycle().take(60_000).collect();
    data.extend_from_slice(b"\r\n--B0undar\r\n");
    let mut body = form_body("B0undary", "image/png", &[PNG, &data].concat());
    body.extend_from_slice(b"epilogue\r\n");
    let response = host
        .client
        .post(host.url("/p/services/upload/echo"))
        .header("content-type", "multipart/form-data; boundary=B0undary")
        .body(body.clone())
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.expect("bytes").as_ref(), body.as_slice());
}

/// Streams a chunked multipart upload of `total` bytes whose file part is declared as
/// `content_type`, stopping as soon as the host answers; returns the status and how many
/// bytes were sent.
async fn streamed_upload(host: &Host, content_type: &str, total: usize) -> (u16, usize) {
    let addr = host.base.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let reader = tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut tmp = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match rd.read(&mut tmp).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        }
        buf
    });
    let head = format!(
        "POST /p/services/upload/echo HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: multipart/form-data; boundary=XX\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let part = format!(
        "--XX\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"big.bin\"\r\n\
         Content-Type: {content_type}\r\n\r\n"
    );
    let mut sent = 0;
    let mut ok = wr.write_all(head.as_bytes()).await.is_ok();
    let filler = vec![b'a'; 64 * 1024];
    let mut first = Some(part.into_bytes());
    while ok && sent < total && !reader.is_finished() {
        let chunk = first.take().unwrap_or_else(|| filler.clone());
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        ok = wr.write_all(&framed).await.is_ok();
        if ok {
            sent += chunk.len();
        }
    }
    let response = reader.await.expect("reader");
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP response after {sent} bytes: {text:?}"));
    (status, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_type_is_refused_with_415_before_the_body_is_read() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (host, _) = start(&db).await;
    let total = 256 * 1024 * 1024;
    let (status, sent) = streamed_upload(&host, "application/x-msdownload", total).await;
    assert_eq!(status, 415);
    eprintln!("415 after {sent} of {total} bytes sent");
    assert!(sent < total, "the whole body was sent ({sent} bytes)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_file_is_refused_with_413_before_the_body_is_read() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (host, _) = start(&db).await;
    let total = 256 * 1024 * 1024;
    let (status, sent) = streamed_upload(&host, "image/png", total).await;
    assert_eq!(status, 413);
    eprintln!("413 after {sent} of {total} bytes sent");
    assert!(sent < total, "the whole body was sent ({sent} bytes)");
}
