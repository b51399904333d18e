//! Files over `/v1`: multipart upload and authorized download, with the SQLite store and
//! the files on disk, typed from their bytes, within the tenant's limits; bad input
//! changes nothing, and files go with their messages and conversations.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chat_core::{Actor, Role, TenantSettings};
use chat_server::testing::{Reply, multipart};
use chat_server::thumbnails::ImageThumbnails;
use chat_server::uploads::DirBlobStore;
use common::Server;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

/// What a bad upload sends (fields, files) and what it gets (status, erroneous field).
type Case<'a> = (
    &'a str,
    Vec<(&'a str, &'a str)>,
    Vec<(&'a str, &'a str, &'a str, &'a [u8])>,
    StatusCode,
    &'a str,
);

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR receipt";

/// A server whose files live in `<tmp>/uploads`.
async fn server() -> (Server, tempfile::TempDir) {
    let files = tempfile::tempdir().unwrap();
    let blobs = DirBlobStore::new(files.path().join("uploads")).unwrap();
    let s = common::start_full(
        |_| {},
        |b| {
            b.blobs(Arc::new(blobs))
                .thumbnails(Arc::new(ImageThumbnails::default()))
        },
    )
    .await;
    (s, files)
}

/// Every file under `dir`, recursively.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_in(&path));
        } else {
            out.push(path);
        }
    }
    out
}

async fn upload(
    s: &Server,
    conversation: &str,
    token: &str,
    fields: &[(&str, &str)],
    files: &[(&str, &str, &str, &[u8])],
) -> Reply {
    // `purpose` travels in the query; the other fields in the form.
    let purpose = fields
        .iter()
        .find(|(k, _)| *k == "purpose")
        .map(|(_, v)| format!("?purpose={v}"))
        .unwrap_or_default();
    let (content_type, body) = multipart(fields, files);
    s.send_as(
        Method::POST,
        &format!("/v1/conversations/{conversation}/files{purpose}"),
        Some(token),
        &[("content-type", content_type.as_str())],
        body,
    )
    .await
}

fn download_path(conversation: &str, file: &Value) -> String {
    format!(
        "/v1/conversations/{conversation}/files/{}",
        file["key"].as_str().unwrap()
    )
}

#[tokio::test]
async fn a_visitor_uploads_a_file_and_staff_download_it_as_an_attachment() {
    let (s, files) = server().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let (conversation, visitor) = s.visitor("jo@shop.example").await;

    // Declared as a web page, named with a path: stored as what the bytes are, named safely.
    let reply = upload(
        &s,
        &conversation,
        &visitor,
        &[],
        &[("file", "../../receipt.png", "text/html", PNG)],
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let file = reply.body["items"][0].clone();
    assert_eq!(file["content_type"], "image/png");
    assert_eq!(file["size"], PNG.len());

    let posted = s
        .post(
            &format!("/v1/conversations/{conversation}/messages"),
            Some(&visitor),
            json!({ "body": "my receipt", "attachments": [file] }),
        )
        .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);

    let got = s
        .get(&download_path(&conversation, &file), Some(&admin.token))
        .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    assert_eq!(&got.bytes[..], PNG);
    assert_eq!(got.headers["content-type"], "image/png");
    assert_eq!(
        got.headers["content-disposition"],
        "attachment; filename=\"receipt.png\""
    );
    assert_eq!(got.headers["x-content-type-options"], "nosniff");
    // The visitor reads its own file; another visitor, or nobody, does not.
    let own = s
        .get(&download_path(&conversation, &file), Some(&visitor))
        .await;
    assert_eq!(own.status, StatusCode::OK);
    let (_, stranger) = s.visitor("mallory@shop.example").await;
    let theirs = s
        .get(&download_path(&conversation, &file), Some(&stranger))
        .await;
    assert!(
        matches!(theirs.status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
        "{}",
        theirs.text
    );
    let anonymous = s.get(&download_path(&conversation, &file), None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    // On disk, owner-only.
    let on_disk = files_in(&files.path().join("uploads"));
    assert_eq!(on_disk.len(), 1);
    assert_eq!(std::fs::read(&on_disk[0]).unwrap(), PNG);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&on_disk[0]), 0o600);
        assert_eq!(mode(on_disk[0].parent().unwrap()), 0o700);
    }
    s.stop().await;
}

#[tokio::test]
async fn bad_uploads_are_refused_with_a_clear_error_and_store_nothing() {
    let (s, files) = server().await;
    let system = Actor::System { tenant: s.tenant };
    s.engine
        .update_tenant_settings(
            &system,
            TenantSettings {
                upload_max_bytes: 64,
                upload_max_files: 2,
                ..TenantSettings::default()
            },
        )
        .await
        .unwrap();
    let (conversation, visitor) = s.visitor("jo@shop.example").await;
    let uploads = files.path().join("uploads");
    let elf: &[u8] = b"\x7fELF\x02\x01\x01\0\0\0";
    let big = vec![b'a'; 65];
    let cases: Vec<Case> = vec![
        // A program declared as an image: the bytes decide, and they are no accepted type.
        (
            "wrong type",
            vec![],
            vec![("file", "cat.png", "image/png", elf)],
            StatusCode::UNPROCESSABLE_ENTITY,
            "file",
        ),
        // One good file beside a bad one: neither is stored.
        (
            "one bad of two",
            vec![],
            vec![
                ("file", "a.png", "image/png", PNG),
                ("file", "b.png", "image/png", elf),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "file",
        ),
        (
            "oversized",
            vec![],
            vec![("file", "a.txt", "text/plain", &big)],
            StatusCode::PAYLOAD_TOO_LARGE,
            "",
        ),
        (
            "too many files",
            vec![],
            vec![
                ("file", "a.png", "image/png", PNG),
                ("file", "b.png", "image/png", PNG),
                ("file", "c.png", "image/png", PNG),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "files",
        ),
        (
            "missing file part",
            vec![("caption", "where is it")],
            vec![],
            StatusCode::UNPROCESSABLE_ENTITY,
            "files",
        ),
        (
            "unknown purpose",
            vec![("purpose", "avatar")],
            vec![("file", "a.png", "image/png", PNG)],
            StatusCode::UNPROCESSABLE_ENTITY,
            "purpose",
        ),
    ];
    for (what, fields, parts, status, field) in cases {
        let reply = upload(&s, &conversation, &visitor, &fields, &parts).await;
        assert_eq!(reply.status, status, "{what}: {}", reply.text);
        if !field.is_empty() {
            assert_eq!(
                (reply.error_code(), reply.body["error"]["field"].as_str()),
                ("validation_failed", Some(field)),
                "{what}"
            );
        }
        assert!(files_in(&uploads).is_empty(), "{what} stored a file");
    }
    // Not a form at all.
    let json_body = s
        .post(
            &format!("/v1/conversations/{conversation}/files"),
            Some(&visitor),
            json!({ "file": "aGk=" }),
        )
        .await;
    assert_eq!(json_body.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A visitor cannot upload note files.
    let note = upload(
        &s,
        &conversation,
        &visitor,
        &[("purpose", "note")],
        &[("file", "a.png", "image/png", PNG)],
    )
    .await;
    assert_eq!(note.status, StatusCode::FORBIDDEN, "{}", note.text);
    assert!(files_in(&uploads).is_empty());
    // Within the limits it works.
    let ok = upload(
        &s,
        &conversation,
        &visitor,
        &[],
        &[
            ("file", "a.png", "image/png", PNG),
            ("file", "b.txt", "text/plain", b"hi"),
        ],
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    assert_eq!(files_in(&uploads).len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn files_of_internal_notes_are_downloaded_by_staff_only() {
    let (s, _files) = server().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let (conversation, visitor) = s.visitor("jo@shop.example").await;
    let reply = upload(
        &s,
        &conversation,
        &admin.token,
        &[("purpose", "note")],
        &[("file", "refund.pdf", "application/pdf", b"%PDF-1.7 refund")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let file = reply.body["items"][0].clone();
    assert_eq!(file["content_type"], "application/pdf");
    let note = s
        .post(
            &format!("/v1/conversations/{conversation}/notes"),
            Some(&admin.token),
            json!({ "body": "refund approved", "attachments": [file] }),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED, "{}", note.text);
    assert_eq!(note.body["attachments"][0]["key"], file["key"]);
    // A note file never rides on a customer-visible message.
    let leaked = s
        .post(
            &format!("/v1/conversations/{conversation}/messages"),
            Some(&admin.token),
            json!({ "body": "here", "attachments": [file] }),
        )
        .await;
    assert_eq!(
        leaked.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        leaked.text
    );

    let path = download_path(&conversation, &file);
    assert_eq!(
        s.get(&path, Some(&admin.token)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.get(&path, Some(&visitor)).await.status,
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}

#[tokio::test]
async fn deleting_a_message_or_its_conversation_removes_the_files_from_disk() {
    let (s, files) = server().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let (conversation, visitor) = s.visitor("jo@shop.example").await;
    let uploads = files.path().join("uploads");
    let mut messages = Vec::new();
    for name in ["one.png", "two.png"] {
        let reply = upload(
            &s,
            &conversation,
            &visitor,
            &[],
            &[("file", name, "image/png", PNG)],
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        let posted = s
            .post(
                &format!("/v1/conversations/{conversation}/messages"),
                Some(&visitor),
                json!({ "body": "", "attachments": [reply.body["items"][0]] }),
            )
            .await;
        assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
        messages.push(posted.body["message"].clone());
    }
    assert_eq!(files_in(&uploads).len(), 2);

    let first = messages[0]["id"].as_str().unwrap();
    let deleted = s
        .delete(&format!("/v1/messages/{first}"), Some(&visitor))
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    let left = files_in(&uploads);
    assert_eq!(left.len(), 1);
    assert!(left[0].ends_with(messages[1]["attachments"][0]["key"].as_str().unwrap()));
    let gone = s
        .get(
            &download_path(&conversation, &messages[0]["attachments"][0]),
            Some(&admin.token),
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    let removed = s
        .delete(
            &format!("/v1/conversations/{conversation}"),
            Some(&admin.token),
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
    assert!(files_in(&uploads).is_empty());
    s.stop().await;
}

/// CRC-32 (IEEE) of PNG chunks, to write a header by hand.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG of a few bytes whose header declares `width` × `height` pixels.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    // An empty IDAT and the end: the header is all a decoder needs to see.
    for chunk in [&b"IDAT"[..], b"IEND"] {
        png.extend_from_slice(&0u32.to_be_bytes());
        png.extend_from_slice(chunk);
        png.extend_from_slice(&crc32(chunk).to_be_bytes());
    }
    png
}

#[tokio::test]
async fn images_get_a_thumbnail_and_a_decompression_bomb_is_refused() {
    let (s, files) = server().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let (conversation, visitor) = s.visitor("jo@shop.example").await;
    let uploads = files.path().join("uploads");
    let mut photo = Vec::new();
    image::RgbImage::from_pixel(800, 400, image::Rgb([200, 30, 30]))
        .write_to(
            &mut std::io::Cursor::new(&mut photo),
            image::ImageFormat::Png,
        )
        .unwrap();
    let reply = upload(
        &s,
        &conversation,
        &visitor,
        &[],
        &[("file", "photo.png", "image/png", &photo)],
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let file = reply.body["items"][0].clone();
    let thumb = s
        .get(
            &format!("{}.thumb.png", download_path(&conversation, &file)),
            Some(&admin.token),
        )
        .await;
    assert_eq!(thumb.status, StatusCode::OK, "{}", thumb.text);
    assert_eq!(thumb.headers["content-type"], "image/png");
    let preview = image::load_from_memory(&thumb.bytes).unwrap();
    assert_eq!((preview.width(), preview.height()), (320, 160));
    // The preview is read like its file: not by another visitor.
    let (_, stranger) = s.visitor("mallory@shop.example").await;
    let theirs = s
        .get(
            &format!("{}.thumb.png", download_path(&conversation, &file)),
            Some(&stranger),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(files_in(&uploads).len(), 2);
    let posted = s
        .post(
            &format!("/v1/conversations/{conversation}/messages"),
            Some(&visitor),
            json!({ "body": "", "attachments": [file] }),
        )
        .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);

    // 100,000 × 100,000 pixels declared in 57 bytes: refused, nothing stored.
    let bomb = png_declaring(100_000, 100_000);
    let refused = upload(
        &s,
        &conversation,
        &visitor,
        &[],
        &[("file", "bomb.png", "image/png", &bomb)],
    )
    .await;
    assert_eq!(
        (refused.status, refused.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("file")),
        "{}",
        refused.text
    );
    assert_eq!(files_in(&uploads).len(), 2);

    // The thumbnail goes with its conversation.
    let removed = s
        .delete(
            &format!("/v1/conversations/{conversation}"),
            Some(&admin.token),
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert!(files_in(&uploads).is_empty());
    s.stop().await;
}
