//! The console's and the widget's files as the server hands them out: embedded, typed,
//! revalidated by `ETag`, with a strict policy on the pages and nothing but our own files.

use crate::common;

use hyper::{Method, StatusCode};

#[tokio::test]
async fn the_console_the_demo_and_the_widget_are_served_from_the_binary() {
    let s = common::start().await;
    for (path, kind) in [
        ("/", "text/html"),
        ("/demo", "text/html"),
        ("/widget.js", "text/javascript"),
        ("/assets/console/index.html", "text/html"),
    ] {
        let page = s.get(path, None).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text);
        let got = page.headers["content-type"].to_str().unwrap();
        assert!(got.starts_with(kind), "{path}: {got}");
        assert_eq!(page.headers["x-content-type-options"], "nosniff");
        assert!(!page.text.is_empty(), "{path} is empty");
        if kind == "text/html" {
            let policy = page.headers["content-security-policy"].to_str().unwrap();
            assert!(policy.contains("script-src 'self'"), "{policy}");
            assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        } else {
            // Other sites' pages load the widget.
            assert_eq!(page.headers["cross-origin-resource-policy"], "cross-origin");
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn an_unchanged_file_is_a_304_and_a_changed_tag_gets_the_file() {
    let s = common::start().await;
    let first = s.get("/widget.js", None).await;
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.len() > 20, "{etag}");
    let again = s
        .send(Method::GET, "/widget.js", &[("if-none-match", &etag)], "")
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.text.is_empty());
    let stale = s
        .send(
            Method::GET,
            "/widget.js",
            &[("if-none-match", "\"old\"")],
            "",
        )
        .await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.text, first.text);
    s.stop().await;
}

#[tokio::test]
async fn a_client_taking_gzip_gets_the_widget_gzipped_under_its_own_tag() {
    use std::io::Read;
    let s = common::start().await;
    let plain = s.get("/widget.js", None).await;
    assert!(plain.headers.get("content-encoding").is_none());
    assert_eq!(plain.headers["vary"], "Accept-Encoding");
    let gz = s
        .send(
            Method::GET,
            "/widget.js",
            &[("accept-encoding", "gzip, br")],
            "",
        )
        .await;
    assert_eq!(gz.status, StatusCode::OK);
    assert_eq!(gz.headers["content-encoding"], "gzip");
    assert_eq!(gz.headers["vary"], "Accept-Encoding");
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(&gz.bytes[..])
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, plain.bytes);
    // The widget's budget, as it crosses the network.
    assert!(
        gz.bytes.len() <= 40 * 1024,
        "{} bytes gzipped",
        gz.bytes.len()
    );
    // Another representation, another tag: a cache never serves one for the other.
    let tag = gz.headers["etag"].to_str().unwrap().to_owned();
    assert_ne!(tag, plain.headers["etag"].to_str().unwrap());
    let again = s
        .send(
            Method::GET,
            "/widget.js",
            &[("accept-encoding", "gzip"), ("if-none-match", &tag)],
            "",
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    let refused = s
        .send(
            Method::GET,
            "/widget.js",
            &[("accept-encoding", "gzip;q=0")],
            "",
        )
        .await;
    assert!(refused.headers.get("content-encoding").is_none());
    s.stop().await;
}

#[tokio::test]
async fn only_embedded_files_are_served() {
    let s = common::start().await;
    for path in [
        "/assets/nothing.js",
        "/assets/console/../../Cargo.toml",
        "/assets/console/%2e%2e/%2e%2e/Cargo.toml",
        "/assets/console//index.html",
        "/assets/../src/lib.rs",
    ] {
        let r = s.get(path, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "not_found", "{path}");
    }
    s.stop().await;
}
