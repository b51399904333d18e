//! Uploads belong to their conversation: only those who may post there upload, only those
//! who may read it download, and a message carries only its own conversation's files.

use crate::common;

use chat_core::{Error, Mode, PostMessage, TenantSettings};
use common::{desk, desk_with};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\nnot really an image";

#[tokio::test]
async fn a_customer_uploads_attaches_and_staff_download() {
    let d = desk().await;
    let (opened, visitor) = d.visitor("jo@shop.example").await;
    let id = opened.conversation.id;
    let file = d
        .engine
        .upload_attachment(&visitor, id, "receipt.png", "image/png", PNG.to_vec())
        .await
        .unwrap();
    assert_eq!(
        (file.name.as_str(), file.size),
        ("receipt.png", PNG.len() as u64)
    );
    let posted = d
        .engine
        .post_message(
            &visitor,
            id,
            PostMessage {
                attachments: vec![file.clone()],
                ..PostMessage::text("here is my receipt")
            },
        )
        .await
        .unwrap();
    assert_eq!(posted.message.attachments, vec![file.clone()]);
    let bytes = d
        .engine
        .download_attachment(&d.admin, id, &file.key)
        .await
        .unwrap();
    assert_eq!(bytes, PNG);
    assert_eq!(
        d.engine
            .download_attachment(&visitor, id, &file.key)
            .await
            .unwrap(),
        PNG
    );

    // Another visitor can neither read it nor pass the key off as its own.
    let (theirs, stranger) = d.visitor("mallory@shop.example").await;
    assert!(matches!(
        d.engine.download_attachment(&stranger, id, &file.key).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        d.engine
            .download_attachment(&stranger, theirs.conversation.id, &file.key)
            .await,
        Err(Error::NotFound(_))
    ));
    let smuggled = d
        .engine
        .post_message(
            &stranger,
            theirs.conversation.id,
            PostMessage {
                attachments: vec![file],
                ..PostMessage::text("look what I found")
            },
        )
        .await;
    assert!(
        matches!(smuggled, Err(Error::Validation { .. })),
        "{smuggled:?}"
    );
}

#[tokio::test]
async fn bad_uploads_store_nothing() {
    let d = desk().await;
    let (opened, visitor) = d.visitor("jo@shop.example").await;
    let id = opened.conversation.id;
    let too_big = vec![0u8; (d.engine.limits().uploads.max_bytes + 1) as usize];
    for (name, kind, bytes) in [
        ("big.png", "image/png", too_big),
        (
            "tool.exe",
            "application/x-msdownload",
            b"MZ\x90\x00\x03\x00".to_vec(),
        ),
        // The declared type does not make it an image: these bytes are no known type.
        ("photo.png", "image/png", b"\x7fELF\x02\x01\x01".to_vec()),
        ("empty.txt", "text/plain", Vec::new()),
        ("   ", "text/plain", b"x".to_vec()),
    ] {
        let refused = d
            .engine
            .upload_attachment(&visitor, id, name, kind, bytes)
            .await;
        assert!(
            matches!(refused, Err(Error::Validation { .. })),
            "{name}: {refused:?}"
        );
    }
    // A PDF and a type with parameters are fine.
    d.engine
        .upload_attachment(&visitor, id, "a.pdf", "application/pdf", b"%PDF".to_vec())
        .await
        .unwrap();
    d.engine
        .upload_attachment(
            &visitor,
            id,
            "a.txt",
            "text/plain; charset=utf-8",
            b"hi".to_vec(),
        )
        .await
        .unwrap();

    // Archived conversations are read-only.
    d.engine.close(&d.admin, id, None).await.unwrap();
    d.engine.archive(&d.admin, id).await.unwrap();
    assert_eq!(d.mode(id).await, Mode::Archived);
    let archived = d
        .engine
        .upload_attachment(&d.admin, id, "late.png", "image/png", PNG.to_vec())
        .await;
    assert!(matches!(archived, Err(Error::Conflict(_))), "{archived:?}");
}

#[tokio::test]
async fn a_pending_upload_is_its_uploaders_until_a_message_of_theirs_uses_it() {
    let d = desk().await;
    let (opened, visitor) = d.visitor("jo@shop.example").await;
    let id = opened.conversation.id;
    let file = d
        .engine
        .upload_pending_attachment(&visitor, "early.png", "image/png", PNG.to_vec())
        .await
        .unwrap();
    assert_eq!(
        d.engine
            .download_pending_attachment(&visitor, &file.key)
            .await
            .unwrap(),
        PNG
    );
    // Nobody else reads it, staff included, and it is no conversation's file yet.
    let (theirs, stranger) = d.visitor("mallory@shop.example").await;
    for other in [&stranger, &d.admin] {
        assert!(matches!(
            d.engine.download_pending_attachment(other, &file.key).await,
            Err(Error::NotFound(_))
        ));
    }
    assert!(matches!(
        d.engine.download_attachment(&d.admin, id, &file.key).await,
        Err(Error::NotFound(_))
    ));
    // Another customer cannot attach it to a message of theirs.
    let stolen = d
        .engine
        .post_message(
            &stranger,
            theirs.conversation.id,
            PostMessage {
                attachments: vec![file.clone()],
                ..PostMessage::text("mine now")
            },
        )
        .await;
    assert!(
        matches!(stolen, Err(Error::Validation { .. })),
        "{stolen:?}"
    );
    // The uploader attaches it: it is copied into the conversation, for its readers.
    let posted = d
        .engine
        .post_message(
            &visitor,
            id,
            PostMessage {
                attachments: vec![file.clone()],
                ..PostMessage::text("here it is")
            },
        )
        .await
        .unwrap();
    let attached = &posted.message.attachments[0];
    assert_ne!(attached.key, file.key);
    assert_eq!(
        (attached.name.as_str(), attached.size),
        ("early.png", file.size)
    );
    assert_eq!(
        d.engine
            .download_attachment(&d.admin, id, &attached.key)
            .await
            .unwrap(),
        PNG
    );
    // The bot and the system have no pending uploads.
    assert!(matches!(
        d.engine
            .upload_pending_attachment(&d.system, "x.png", "image/png", PNG.to_vec())
            .await,
        Err(Error::Forbidden(_))
    ));
}

#[tokio::test]
async fn the_stored_type_comes_from_the_bytes_not_from_the_client() {
    let d = desk().await;
    let (opened, visitor) = d.visitor("jo@shop.example").await;
    let id = opened.conversation.id;
    // A page sent as an image is stored as the text it is.
    let page = d
        .engine
        .upload_attachment(
            &visitor,
            id,
            "cat.png",
            "image/png",
            b"<html><script>alert(1)</script></html>".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(page.content_type, "text/plain");
    // A real PNG sent as `application/octet-stream` is an image.
    let image = d
        .engine
        .upload_attachment(
            &visitor,
            id,
            "x.bin",
            "application/octet-stream",
            PNG.to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(image.content_type, "image/png");
}

#[tokio::test]
async fn a_tenant_narrows_size_and_types_of_its_uploads() {
    let d = desk_with(TenantSettings {
        upload_max_bytes: 8,
        upload_allowed_types: vec!["application/pdf".into()],
        ..TenantSettings::default()
    })
    .await;
    let (opened, visitor) = d.visitor("jo@shop.example").await;
    let id = opened.conversation.id;
    for bytes in [PNG.to_vec(), b"%PDF-1.7 and much more".to_vec()] {
        let refused = d
            .engine
            .upload_attachment(&visitor, id, "f", "application/pdf", bytes)
            .await;
        assert!(
            matches!(refused, Err(Error::Validation { .. })),
            "{refused:?}"
        );
    }
    let limits = d
        .engine
        .upload_policy(&visitor, id, chat_core::FileUse::Message)
        .await
        .unwrap();
    assert_eq!(limits.max_bytes, 8);
    d.engine
        .upload_attachment(&visitor, id, "f.pdf", "text/plain", b"%PDF-1.7".to_vec())
        .await
        .unwrap();
}

#[tokio::test]
async fn files_of_notes_are_for_staff_only() {
    let d = desk().await;
    let (opened, visitor) = d.visitor("jo@shop.example").await;
    let id = opened.conversation.id;
    // Customers write no notes, so they upload no note files.
    assert!(
        d.engine
            .upload_note_attachment(&visitor, id, "x.png", PNG.to_vec())
            .await
            .is_err()
    );
    let file = d
        .engine
        .upload_note_attachment(&d.admin, id, "refund.pdf", b"%PDF-1.7".to_vec())
        .await
        .unwrap();
    // A note file is not a customer message's file, and a customer file is not a note's.
    let leaked = d
        .engine
        .post_message(
            &d.admin,
            id,
            PostMessage {
                attachments: vec![file.clone()],
                ..PostMessage::text("see attached")
            },
        )
        .await;
    assert!(
        matches!(leaked, Err(Error::Validation { .. })),
        "{leaked:?}"
    );
    let visible = d
        .engine
        .upload_attachment(&d.admin, id, "a.png", "image/png", PNG.to_vec())
        .await
        .unwrap();
    assert!(matches!(
        d.engine
            .post_note_with_attachments(&d.admin, id, "", vec![visible])
            .await,
        Err(Error::Validation { .. })
    ));
    let note = d
        .engine
        .post_note_with_attachments(&d.admin, id, "refund approved", vec![file.clone()])
        .await
        .unwrap();
    assert_eq!(note.attachments, vec![file.clone()]);
    assert_eq!(
        d.engine
            .download_attachment(&d.admin, id, &file.key)
            .await
            .unwrap(),
        b"%PDF-1.7"
    );
    assert!(matches!(
        d.engine.download_attachment(&visitor, id, &file.key).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn deleting_a_message_or_a_conversation_removes_its_files() {
    let d = desk().await;
    let (opened, visitor) = d.visitor("jo@shop.example").await;
    let id = opened.conversation.id;
    let upload = |name: &'static str| {
        let engine = d.engine.clone();
        let visitor = visitor.clone();
        async move {
            engine
                .upload_attachment(&visitor, id, name, "image/png", PNG.to_vec())
                .await
                .unwrap()
        }
    };
    let (first, second) = (upload("one.png").await, upload("two.png").await);
    let mut posted = Vec::new();
    for file in [&first, &second] {
        posted.push(
            d.engine
                .post_message(
                    &visitor,
                    id,
                    PostMessage {
                        attachments: vec![file.clone()],
                        ..PostMessage::text("")
                    },
                )
                .await
                .unwrap()
                .message,
        );
    }
    let note_file = d
        .engine
        .upload_note_attachment(&d.admin, id, "n.txt", b"internal".to_vec())
        .await
        .unwrap();
    d.engine
        .post_note_with_attachments(&d.admin, id, "", vec![note_file.clone()])
        .await
        .unwrap();

    d.engine
        .delete_message(&visitor, posted[0].id)
        .await
        .unwrap();
    assert!(matches!(
        d.engine.blobs().get(&first.key).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(d.engine.blobs().get(&second.key).await.unwrap(), PNG);

    d.engine.delete_conversation(&d.admin, id).await.unwrap();
    for key in [&second.key, &note_file.key] {
        assert!(matches!(
            d.engine.blobs().get(key).await,
            Err(Error::NotFound(_))
        ));
    }
}
