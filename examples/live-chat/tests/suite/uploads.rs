//! Uploads as documented: the listed types, 10 MB per file, at most 5 files; files go
//! with a message either in its multipart form or by id after `/upload`.

use crate::common;

use common::john;
use hyper::StatusCode;
use serde_json::json;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\nnot really an image";

#[tokio::test]
async fn upload_then_send_then_download() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let sid = s.session(john()).await;
    let uploaded = s
        .multipart(
            "/api/live-chat/upload",
            None,
            &[("sessionId", &sid)],
            &[
                ("files", "screenshot.png", "image/png", PNG.to_vec()),
                (
                    "files",
                    "invoice.pdf",
                    "application/pdf",
                    b"%PDF-1.4".to_vec(),
                ),
            ],
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.body);
    assert_eq!(uploaded.body["success"], true);
    assert_eq!(uploaded.body["message"], "Files uploaded successfully");
    let attachments = uploaded.body["data"]["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2);
    let png = &attachments[0];
    assert_eq!(png["name"], "screenshot.png");
    assert_eq!(png["type"], "image/png");
    assert_eq!(png["size"], PNG.len());
    assert_eq!(png["previewUrl"], png["url"]);
    assert_eq!(
        attachments[1]["previewUrl"],
        json!(null),
        "no preview for a PDF"
    );

    let downloaded = s.get(png["url"].as_str().unwrap(), None).await;
    assert_eq!(downloaded.status, StatusCode::OK);
    assert_eq!(&downloaded.bytes[..], PNG);
    assert_eq!(downloaded.headers["content-type"], "image/png");
    let pdf = s.get(attachments[1]["url"].as_str().unwrap(), None).await;
    assert_eq!(pdf.headers["content-disposition"], "attachment");

    // The message carries the uploaded files by id.
    let sent = s
        .post(
            &format!("/api/live-chat/sessions/{sid}/messages"),
            None,
            json!({ "content": "Please see the attached screenshot", "attachments": [png] }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    let carried = &sent.body["data"]["attachments"][0];
    assert_eq!(carried["id"], png["id"]);
    assert_eq!(carried["size"], PNG.len());
    assert_eq!(carried["type"], "image/png");

    // Another session cannot borrow the upload.
    let other = s
        .session(json!({ "user": { "name": "Eve", "email": "eve@example.com" } }))
        .await;
    let borrowed = s
        .post(
            &format!("/api/live-chat/sessions/{other}/messages"),
            None,
            json!({ "content": "mine now", "attachments": [png] }),
        )
        .await;
    assert_eq!(borrowed.status, StatusCode::BAD_REQUEST);
    let stolen = s
        .get(&png["url"].as_str().unwrap().replace(&sid, &other), None)
        .await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND);
    s.stop().await;
}

#[tokio::test]
async fn messages_and_replies_take_files_in_their_multipart_form() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let sid = s.session(john()).await;
    let sent = s
        .multipart(
            &format!("/api/live-chat/sessions/{sid}/messages"),
            None,
            &[("content", "Please see the attached screenshot")],
            &[
                ("files", "file1.png", "image/png", PNG.to_vec()),
                ("files", "file2.pdf", "application/pdf", b"%PDF".to_vec()),
            ],
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    assert_eq!(
        sent.body["data"]["content"],
        "Please see the attached screenshot"
    );
    assert_eq!(
        sent.body["data"]["attachments"].as_array().unwrap().len(),
        2
    );

    let reply = s
        .multipart(
            &format!("/api/admin/live-chat/sessions/{sid}/reply"),
            Some(&s.jane.token),
            &[("content", "Here's the document you requested")],
            &[(
                "files",
                "document.pdf",
                "application/pdf",
                b"%PDF-1.7".to_vec(),
            )],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["data"]["type"], "agent");
    let url = reply.body["data"]["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    // The guest downloads the agent's file through its own session.
    let got = s.get(&url, None).await;
    assert_eq!(&got.bytes[..], b"%PDF-1.7");
    s.stop().await;
}

/// The leading bytes of a file with this name's extension: the engine types uploads by
/// their content, so a one-byte "image" is no image.
fn sample(name: &str) -> Vec<u8> {
    let head: &[u8] = match name.rsplit('.').next().unwrap() {
        "jpg" | "jpeg" => b"\xFF\xD8\xFF\xE0\0\x10JFIF",
        "png" => PNG,
        "gif" => b"GIF89a\x01\0\x01\0",
        "webp" => b"RIFF\x24\0\0\0WEBPVP8 ",
        "pdf" => b"%PDF-1.7",
        "doc" | "xls" => b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0",
        "docx" => b"PK\x03\x04\x14\0[Content_Types].xml word/document.xml",
        "xlsx" => b"PK\x03\x04\x14\0[Content_Types].xml xl/workbook.xml",
        _ => b"plain text",
    };
    head.to_vec()
}

#[tokio::test]
async fn types_counts_and_sizes_are_limited_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let sid = s.session(john()).await;
    let upload = |files: Vec<(&'static str, &'static str, &'static str, Vec<u8>)>| {
        let s = &s;
        let sid = sid.clone();
        async move {
            s.multipart(
                "/api/live-chat/upload",
                None,
                &[("sessionId", &sid)],
                &files,
            )
            .await
        }
    };
    for name in [
        "a.jpg", "a.jpeg", "a.png", "a.gif", "a.webp", "a.pdf", "a.doc", "a.docx", "a.xls",
        "a.xlsx", "a.txt",
    ] {
        let ok = upload(vec![(
            "files",
            name,
            "application/octet-stream",
            sample(name),
        )])
        .await;
        assert_eq!(ok.status, StatusCode::OK, "{name}: {}", ok.body);
    }
    let exe = upload(vec![("files", "setup.exe", "image/png", vec![1])]).await;
    assert_eq!(exe.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        exe.body["message"],
        "Invalid file type. Allowed types: jpg, jpeg, png, gif, webp, pdf, doc, docx, xls, xlsx, txt"
    );
    let html = upload(vec![(
        "files",
        "page.html",
        "text/html",
        b"<script>".to_vec(),
    )])
    .await;
    assert_eq!(html.status, StatusCode::BAD_REQUEST);

    let six = upload(
        (0..6)
            .map(|_| ("files", "a.png", "image/png", PNG.to_vec()))
            .collect(),
    )
    .await;
    assert_eq!(six.status, StatusCode::BAD_REQUEST);
    assert_eq!(six.body["message"], "Too many files. Maximum is 5 files");
    let five = upload(
        (0..5)
            .map(|_| ("files", "a.png", "image/png", PNG.to_vec()))
            .collect(),
    )
    .await;
    assert_eq!(five.status, StatusCode::OK);

    let limit = 10 * 1024 * 1024;
    let too_big = upload(vec![(
        "files",
        "big.pdf",
        "application/pdf",
        vec![b'x'; limit + 1],
    )])
    .await;
    assert_eq!(too_big.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        too_big.body["message"],
        "File too large. Maximum size is 10MB"
    );
    let just_fits = upload(vec![(
        "files",
        "big.pdf",
        "application/pdf",
        vec![b'x'; limit],
    )])
    .await;
    assert_eq!(just_fits.status, StatusCode::OK, "{}", just_fits.body);

    let nothing = upload(vec![]).await;
    assert_eq!(nothing.status, StatusCode::BAD_REQUEST);
    assert_eq!(nothing.body["message"], "No files uploaded");
    s.stop().await;
}
