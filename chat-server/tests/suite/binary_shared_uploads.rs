//! Two `chat-server` processes over one PostgreSQL database and one uploads folder (a
//! shared mount in production): a file uploaded through one downloads through the other,
//! its thumbnail too, both ways. Needs `CHAT_TEST_POSTGRES_URL`; without it the test says
//! it was skipped (and fails under `CHAT_REQUIRE_SERVICES=1`).

use crate::services;

use std::ffi::OsString;

use chat_server::testing::Process;
use hyper::Method;
use serde_json::json;
use services::{Schema, call, service_url};

fn png(color: [u8; 3]) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::RgbImage::from_pixel(64, 32, image::Rgb(color))
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    bytes
}

/// Uploads `bytes` as an image through `server`; the attachment it answers.
async fn upload(
    server: &Process,
    conversation: &str,
    token: &str,
    bytes: &[u8],
) -> serde_json::Value {
    let (form, body) =
        chat_server::testing::multipart(&[], &[("file", "photo.png", "image/png", bytes)]);
    let reply = server
        .send_as(
            Method::POST,
            &format!("/v1/conversations/{conversation}/files"),
            Some(token),
            &[("content-type", form.as_str())],
            body,
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body["items"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_uploaded_through_one_server_downloads_through_the_other_with_its_thumbnail() {
    let Some(url) = service_url("CHAT_TEST_POSTGRES_URL") else {
        return;
    };
    let schema = Schema::create(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let store_url = schema.store_url();
    let uploads = dir.path().join("shared-uploads");
    let key = dir.path().join("chat-signing.key");
    let args = |name: &str| -> Vec<OsString> {
        vec![
            "--store".into(),
            store_url.clone().into(),
            "--key-file".into(),
            key.clone().into(),
            "--db".into(),
            dir.path().join(format!("{name}-unused.db")).into(),
            "--uploads-dir".into(),
            uploads.clone().into(),
            "--bot".into(),
            "none".into(),
        ]
    };
    let a = Process::start(env!("CARGO_BIN_EXE_chat-server"), args("a"));
    let b = Process::start(env!("CARGO_BIN_EXE_chat-server"), args("b"));

    let (status, opened) = call(
        &a,
        "POST",
        "/v1/conversations",
        None,
        Some(json!({ "first_message": "the print came out red" })),
    )
    .await;
    assert_eq!(status, 201, "{opened}");
    let conversation = opened["conversation"]["id"].as_str().unwrap().to_owned();
    let visitor = opened["visitor_token"].as_str().unwrap().to_owned();

    for (up, down, color) in [(&a, &b, [200, 30, 30]), (&b, &a, [30, 30, 200])] {
        let photo = png(color);
        let file = upload(up, &conversation, &visitor, &photo).await;
        let (status, posted) = call(
            up,
            "POST",
            &format!("/v1/conversations/{conversation}/messages"),
            Some(&visitor),
            Some(json!({ "body": "see the photo", "attachments": [file] })),
        )
        .await;
        assert_eq!(status, 201, "{posted}");
        let key = file["key"].as_str().unwrap();
        let got = down
            .get(
                &format!("/v1/conversations/{conversation}/files/{key}"),
                Some(&visitor),
            )
            .await;
        assert_eq!(got.status, 200, "{}", got.text);
        assert_eq!(&got.bytes[..], &photo[..]);
        let thumbnail = down
            .get(
                &format!("/v1/conversations/{conversation}/files/{key}.thumb.png"),
                Some(&visitor),
            )
            .await;
        assert_eq!(thumbnail.status, 200, "{}", thumbnail.text);
        assert!(thumbnail.bytes.starts_with(b"\x89PNG"), "a PNG thumbnail");
    }
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}
