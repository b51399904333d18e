//! Upload forms read within bounds, attachments on disk, and keys that cannot escape.

use crate::common;

use std::sync::Arc;

use chat_core::Actor;
use chat_core::BlobStore;
use chat_server::auth::{self, Caller};
use chat_server::http::{self, Resp};
use chat_server::uploads::{DirBlobStore, read_multipart};
use chat_server::{Context, Extension, Handled};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::json;

/// `POST /upload` stores the form's files in the caller's conversation.
struct Upload;

#[async_trait::async_trait]
impl Extension for Upload {
    async fn handle(&self, cx: &Context, req: Request<Incoming>) -> Handled {
        if (req.method(), req.uri().path()) != (&Method::POST, "/upload") {
            return Handled::Declined(req);
        }
        Handled::Answered("/upload", upload(cx, req).await)
    }
}

async fn upload(cx: &Context, req: Request<Incoming>) -> Resp {
    let token = auth::bearer(req.headers(), None).ok().flatten();
    let Ok(Caller::Actor(
        actor @ Actor::Customer {
            conversation: Some(conversation),
            ..
        },
    )) = cx.authenticate(token.as_deref()).await
    else {
        return http::json(StatusCode::UNAUTHORIZED, &json!({ "error": "who are you" }));
    };
    let (parts, body) = req.into_parts();
    let form = match read_multipart(&parts.headers, body, 2, 1024).await {
        Ok(form) => form,
        Err(e) => return http::error(&e),
    };
    let mut stored = Vec::new();
    for file in &form.files {
        match cx
            .engine()
            .upload_attachment(
                &actor,
                conversation,
                &file.file_name,
                &file.content_type,
                file.bytes.to_vec(),
            )
            .await
        {
            Ok(a) => stored.push(a),
            Err(e) => return http::error(&e.into()),
        }
    }
    http::json(
        StatusCode::OK,
        &json!({ "files": stored, "caption": form.field("caption") }),
    )
}

fn form(files: &[(&str, &str, &[u8])], caption: &str) -> (String, Vec<u8>) {
    let boundary = "XyZboundary42";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"caption\"\r\n\r\n{caption}\r\n"
        )
        .as_bytes(),
    );
    for (name, kind, bytes) in files {
        body.extend_from_slice(
            format!("--{boundary}\r\ncontent-disposition: form-data; name=\"files\"; filename=\"{name}\"\r\ncontent-type: {kind}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn upload_forms_are_read_within_bounds() {
    let s = common::start_extended(|_| {}, |b| b, Some(Arc::new(Upload))).await;
    let (_, visitor) = s.visitor("v@example.com").await;
    let send = |files: Vec<(&'static str, &'static str, &'static [u8])>| {
        let (kind, body) = form(&files, "my files");
        let s = &s;
        let visitor = visitor.clone();
        async move {
            s.send_as(
                Method::POST,
                "/upload",
                Some(&visitor),
                &[("content-type", kind.as_str())],
                body,
            )
            .await
        }
    };
    let ok = send(vec![
        ("a.png", "image/png", b"png"),
        ("b.txt", "text/plain", b"text"),
    ])
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.body["caption"], "my files");
    assert_eq!(ok.body["files"][1]["name"], "b.txt");
    assert_eq!(ok.body["files"][1]["size"], 4);

    let three = send(vec![
        ("a.png", "image/png", b"1"),
        ("b.png", "image/png", b"2"),
        ("c.png", "image/png", b"3"),
    ])
    .await;
    assert_eq!(
        (three.status, three.error_code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    let big: &'static [u8] = Box::leak(vec![b'x'; 1025].into_boxed_slice());
    let large = send(vec![("big.png", "image/png", big)]).await;
    assert_eq!(
        (large.status, large.error_code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let exe = send(vec![(
        "tool.exe",
        "application/x-msdownload",
        b"MZ\x90\0\x03\0",
    )])
    .await;
    assert_eq!(exe.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", exe.text);
    let json_body = s
        .post("/upload", Some(&visitor), json!({ "not": "a form" }))
        .await;
    assert_eq!(json_body.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let broken = s
        .send_as(
            Method::POST,
            "/upload",
            Some(&visitor),
            &[("content-type", "multipart/form-data; boundary=nope")],
            bytes::Bytes::from_static(b"--nope\r\ngarbage"),
        )
        .await;
    assert_eq!(
        (broken.status, broken.error_code()),
        (StatusCode::BAD_REQUEST, "malformed_multipart")
    );
    s.stop().await;
}

#[tokio::test]
async fn files_on_disk_survive_and_keys_cannot_escape() {
    let dir = tempfile::tempdir().unwrap();
    let key = {
        let store = DirBlobStore::new(dir.path().join("uploads")).unwrap();
        store
            .put("../../etc/passwd", b"bytes".to_vec())
            .await
            .unwrap()
    };
    let segments: Vec<_> = key.split('/').collect();
    assert_eq!(segments.len(), 2, "{key}");
    assert!(segments.iter().all(|s| !s.starts_with('.')), "{key}");
    let store = DirBlobStore::new(dir.path().join("uploads")).unwrap();
    assert_eq!(store.get(&key).await.unwrap(), b"bytes");
    for evil in ["../chat.db", "/etc/passwd", "0123/../../x", "a/b/c", ""] {
        assert!(store.get(evil).await.is_err(), "{evil}");
    }
    store.delete(&key).await.unwrap();
    assert!(store.get(&key).await.is_err());
    store.delete(&key).await.unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn files_on_disk_are_the_servers_users_alone() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("uploads");
    let store = DirBlobStore::new(&root).unwrap();
    let key = store
        .put("passport.pdf", b"%PDF-1.7".to_vec())
        .await
        .unwrap();
    let file = root.join(&key);
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    assert_eq!(mode(&file), 0o600);
}
