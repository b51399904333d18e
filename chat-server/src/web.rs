//! The agent console and the website widget: files under `chat-server/web/`, embedded in
//! the binary at build time so a running server needs no Node, no CDN and no directory
//! beside it.
//!
//! Layout: `web/console/` (the console, `index.html` at `/`), `web/widget/` (the widget,
//! `widget.js` at `/widget.js`), `web/demo/` (`index.html` at `/demo`, a sample page with
//! the widget on it). Every file is also at `/assets/<path under web/>`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::sync::LazyLock;

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, ETAG, HeaderValue, IF_NONE_MATCH, VARY,
};

use crate::api::Ctx;
use crate::error::ApiError;
use crate::http::{self, Resp};

/// The embedded files. `debug-embed` embeds them in debug builds too, so tests run the
/// bytes that ship rather than whatever is on disk beside the source.
#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct Files;

/// The content security policy of the console's and the demo's pages: only the server's
/// own scripts, styles and sockets; no frames around them (clickjacking), no `<base>`.
/// The widget's own pages are built by its script inside the host page, under the host's
/// policy.
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data: blob:; connect-src 'self' ws: wss:; frame-ancestors 'none'; \
base-uri 'none'; form-action 'self'; object-src 'none'";

/// Gzip copies of the embedded text files, made once at the first request for any file:
/// a few files, compressed at the best level because it is done once per process.
static GZIPPED: LazyLock<HashMap<String, Bytes>> = LazyLock::new(|| {
    Files::iter()
        .filter(|path| compressible(content_type(path)))
        .filter_map(|path| {
            let file = Files::get(&path)?;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(&file.data).ok()?;
            let gz = gz.finish().ok()?;
            // Not worth a header for a file that does not shrink.
            (gz.len() < file.data.len()).then(|| (path.into_owned(), Bytes::from(gz)))
        })
        .collect()
});

fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type.starts_with("application/json")
        || content_type.starts_with("image/svg")
}

/// Whether the client takes gzip: `gzip` (or `*`) in `Accept-Encoding` without `q=0`.
fn accepts_gzip(headers: &hyper::HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// One embedded file, typed by its name, with its SHA-256 as a strong `ETag`; gzipped
/// for clients that take it (its own `ETag`, as a different representation).
///
/// `Cache-Control: no-cache` makes browsers revalidate on every load: a 304 costs one
/// round trip on loopback, and a new binary's files are never hidden by a stale cache.
pub fn page(ctx: &Ctx, path: &str) -> Result<Resp, ApiError> {
    // `..` never reaches the file system (the files are embedded), but a path that is not
    // plain names is not one of ours either.
    let file = (!path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == ".."))
    .then(|| Files::get(path))
    .flatten()
    .ok_or_else(|| ApiError::not_found("no such file"))?;
    let content_type = content_type(path);
    let gzipped = if accepts_gzip(&ctx.headers) {
        GZIPPED.get(path).cloned()
    } else {
        None
    };
    let etag = format!(
        "\"{}{}\"",
        hex::encode(&file.metadata.sha256_hash()[..16]),
        if gzipped.is_some() { "-gz" } else { "" }
    );
    let fresh = ctx
        .headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if fresh {
        http::with_type(StatusCode::NOT_MODIFIED, Vec::new(), content_type)
    } else if let Some(gz) = &gzipped {
        http::with_type(StatusCode::OK, gz.clone(), content_type)
    } else {
        let body = match file.data {
            Cow::Borrowed(b) => Bytes::from_static(b),
            Cow::Owned(v) => Bytes::from(v),
        };
        http::with_type(StatusCode::OK, body, content_type)
    };
    let headers = resp.headers_mut();
    if compressible(content_type) {
        headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    if gzipped.is_some() {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    headers.insert(
        ETAG,
        HeaderValue::from_str(&etag).expect("hex is a header value"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if content_type.starts_with("text/html") {
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static(PAGE_POLICY),
        );
        headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    } else {
        // The widget's script and styles are loaded by other sites' pages.
        headers.insert(
            "cross-origin-resource-policy",
            HeaderValue::from_static("cross-origin"),
        );
    }
    Ok(resp)
}

/// The type of an embedded file, from its name: we wrote every one of them.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("mp3") => "audio/mpeg",
        Some("ogg") => "audio/ogg",
        Some("wav") => "audio/wav",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_file_has_a_known_type() {
        let unknown: Vec<_> = Files::iter()
            .filter(|p| content_type(p) == "application/octet-stream")
            .collect();
        assert!(unknown.is_empty(), "add their types: {unknown:?}");
        assert!(
            Files::iter().count() > 0,
            "web/ holds the console and widget"
        );
    }

    #[test]
    fn gzip_is_taken_only_when_accepted() {
        let take = |v: &'static str| {
            let mut h = hyper::HeaderMap::new();
            h.insert(ACCEPT_ENCODING, HeaderValue::from_static(v));
            accepts_gzip(&h)
        };
        assert!(take("gzip, deflate, br"));
        assert!(take("br;q=1.0, gzip;q=0.8"));
        assert!(take("*"));
        assert!(!take("gzip;q=0"));
        assert!(!take("br, identity"));
        assert!(!accepts_gzip(&hyper::HeaderMap::new()));
    }

    #[test]
    fn the_gzipped_widget_unpacks_to_the_embedded_file() {
        use std::io::Read;
        let gz = GZIPPED
            .get("widget/widget.js")
            .expect("the widget is compressed");
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, Files::get("widget/widget.js").unwrap().data.as_ref());
        assert!(
            gz.len() <= 40 * 1024,
            "the widget's budget: {} bytes",
            gz.len()
        );
    }
}
