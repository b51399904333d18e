//! Erasing a contact over `/v1`, on the SQLite store in a file with the files on disk:
//! unique markers (name, e-mail, phone, an attribute, message words, a note, a feedback
//! text, a file's bytes) are written, then the contact is erased, and no route and no byte
//! of the database, its log, the search file, its log or the file directory holds any of
//! them any more.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chat_core::Role;
use chat_server::testing::multipart;
use chat_server::uploads::DirBlobStore;
use hyper::{Method, StatusCode};
use serde_json::json;

const NAME: &str = "Quillonamemark";
const EMAIL: &str = "quillomailmark@shop.example";
const PHONE: &str = "+15550199731";
const ATTRIBUTE: &str = "quilloattrmark";
const WORDS: &str = "quillowordmark";
const NOTE: &str = "quillonotemark";
const FEEDBACK: &str = "quillofeedbackmark";
const FILE: &[u8] = b"%PDF-1.7 quillofilebytesmark";
const LATER: &str = "quillolatermark";

/// The markers as bytes, for the files.
fn markers() -> Vec<&'static [u8]> {
    vec![
        NAME.as_bytes(),
        EMAIL.as_bytes(),
        PHONE.as_bytes(),
        ATTRIBUTE.as_bytes(),
        WORDS.as_bytes(),
        NOTE.as_bytes(),
        FEEDBACK.as_bytes(),
        &FILE[9..],
        LATER.as_bytes(),
    ]
}

/// Every file under `dir`, recursively.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_in(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Which markers the files hold, as "file: marker".
fn found_in(files: &[PathBuf]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        for marker in markers() {
            if bytes.windows(marker.len()).any(|w| w == marker) {
                found.push(format!(
                    "{}: {}",
                    file.display(),
                    String::from_utf8_lossy(marker)
                ));
            }
        }
    }
    found
}

fn ok(reply: &chat_server::testing::Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "{}", reply.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_contact_leaves_nothing_in_any_route_or_file() {
    let files = tempfile::tempdir().unwrap();
    let uploads = files.path().join("uploads");
    let blobs = DirBlobStore::new(&uploads).unwrap();
    let s = common::start_full(|_| {}, |b| b.blobs(Arc::new(blobs))).await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let sue = s.staff("Sue", Role::Supervisor, &[]).await;
    let ann = s.staff("Ann", Role::Agent, &[]).await;

    // The customer and a bystander whose data must stay.
    let opened = s
        .post(
            "/v1/conversations",
            None,
            json!({ "contact": { "name": NAME, "email": EMAIL, "phone": PHONE } }),
        )
        .await;
    ok(&opened, StatusCode::CREATED);
    let id = opened.body["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let contact = opened.body["conversation"]["contact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let visitor = opened.body["visitor_token"].as_str().unwrap().to_owned();
    let (other, other_visitor) = s.visitor("bystander@shop.example").await;
    ok(
        &s.post(
            &format!("/v1/conversations/{other}/messages"),
            Some(&other_visitor),
            json!({ "body": "bystander words stay" }),
        )
        .await,
        StatusCode::CREATED,
    );

    let conv = |p: &str| format!("/v1/conversations/{id}{p}");
    ok(
        &s.patch(
            &format!("/v1/contacts/{contact}"),
            Some(&admin.token),
            json!({ "metadata": { "plan": ATTRIBUTE } }),
        )
        .await,
        StatusCode::OK,
    );
    ok(
        &s.post(
            &conv("/messages"),
            Some(&visitor),
            json!({ "body": format!("my order {WORDS} is late") }),
        )
        .await,
        StatusCode::CREATED,
    );
    let (content_type, form) = multipart(&[], &[("file", "order.pdf", "application/pdf", FILE)]);
    let uploaded = s
        .send_as(
            Method::POST,
            &conv("/files"),
            Some(&visitor),
            &[("content-type", content_type.as_str())],
            form,
        )
        .await;
    ok(&uploaded, StatusCode::CREATED);
    let file = uploaded.body["items"][0].clone();
    ok(
        &s.post(
            &conv("/messages"),
            Some(&visitor),
            json!({ "body": "the invoice", "attachments": [file] }),
        )
        .await,
        StatusCode::CREATED,
    );
    ok(
        &s.post(&conv("/handoff"), Some(&visitor), json!({})).await,
        StatusCode::OK,
    );
    ok(
        &s.post(
            &conv("/assign"),
            Some(&admin.token),
            json!({ "agent_id": ann.id }),
        )
        .await,
        StatusCode::OK,
    );
    ok(
        &s.post(
            &conv("/notes"),
            Some(&ann.token),
            json!({ "body": format!("{NOTE} VIP customer") }),
        )
        .await,
        StatusCode::CREATED,
    );
    ok(
        &s.post(
            &conv("/close"),
            Some(&visitor),
            json!({ "rating": { "score": 2, "feedback": format!("{FEEDBACK} too slow") } }),
        )
        .await,
        StatusCode::OK,
    );
    // Reopened and written in again: a conversation in progress when it is erased.
    ok(
        &s.post(&conv("/reopen"), Some(&visitor), json!({})).await,
        StatusCode::OK,
    );
    ok(
        &s.post(
            &conv("/messages"),
            Some(&visitor),
            json!({ "body": format!("{LATER} anyone there") }),
        )
        .await,
        StatusCode::CREATED,
    );
    let file_path = conv(&format!("/files/{}", file["key"].as_str().unwrap()));
    ok(&s.get(&file_path, Some(&admin.token)).await, StatusCode::OK);

    // Before: the search finds the words (so the search file holds them), and the files
    // hold every marker, so the checks after the erasure can fail.
    let store = chat_sqlite::SqliteStore::open(s.dir().join("chat.db")).unwrap();
    store.wait_for_search_index().await.unwrap();
    drop(store);
    let found = s
        .get(
            &format!("/v1/conversations?text={WORDS}"),
            Some(&admin.token),
        )
        .await;
    assert_eq!(found.body["items"][0]["id"], id.as_str(), "{}", found.text);
    let mut every_file = files_in(s.dir());
    every_file.extend(files_in(&uploads));
    assert!(
        !found_in(&every_file).is_empty(),
        "the markers are on disk before the erasure"
    );

    // Only admins erase; an unknown contact is not found.
    ok(
        &s.post(
            &format!("/v1/contacts/{contact}/erase"),
            Some(&sue.token),
            json!({}),
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    let unknown = s
        .call(
            Method::POST,
            &format!("/v1/contacts/{}/erase", uuid::Uuid::now_v7()),
            Some(&admin.token),
            None,
        )
        .await;
    ok(&unknown, StatusCode::NOT_FOUND);
    assert_eq!(unknown.error_code(), "not_found");

    let erased = s
        .call(
            Method::POST,
            &format!("/v1/contacts/{contact}/erase"),
            Some(&admin.token),
            None,
        )
        .await;
    ok(&erased, StatusCode::OK);
    assert_eq!(
        erased.body,
        json!({ "contact_id": contact, "erased": true, "conversations": 1, "files": 1 })
    );
    // Again: nothing left to do, nothing written.
    let head = s
        .get("/v1/events?since=0&limit=500", Some(&admin.token))
        .await;
    let again = s
        .call(
            Method::POST,
            &format!("/v1/contacts/{contact}/erase"),
            Some(&admin.token),
            None,
        )
        .await;
    ok(&again, StatusCode::OK);
    assert_eq!(again.body["erased"], false);
    let after = s
        .get("/v1/events?since=0&limit=500", Some(&admin.token))
        .await;
    assert_eq!(head.body["head"], after.body["head"]);

    // No route shows any of it.
    let mut answers = Vec::new();
    for text in [NAME, EMAIL, WORDS, NOTE, FEEDBACK, LATER, "quillo"] {
        answers.push(
            s.get(
                &format!("/v1/conversations?text={text}"),
                Some(&admin.token),
            )
            .await,
        );
        answers.push(
            s.get(&format!("/v1/contacts?text={text}"), Some(&admin.token))
                .await,
        );
    }
    let today = time::OffsetDateTime::now_utc().date();
    let period = format!(
        "from={}&to={}",
        today.previous_day().unwrap(),
        today.next_day().unwrap()
    );
    for path in [
        "/v1/conversations".to_owned(),
        "/v1/conversations?format=csv".to_owned(),
        "/v1/contacts".to_owned(),
        format!("/v1/contacts/{contact}"),
        format!("/v1/contacts/{contact}/conversations"),
        "/v1/events?since=0&limit=500".to_owned(),
        format!("/v1/reports/feedback?{period}"),
        format!("/v1/reports/overview?{period}"),
    ] {
        answers.push(s.get(&path, Some(&admin.token)).await);
    }
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert!(
            !answer.text.to_lowercase().contains("quillo") && !answer.text.contains("5550199731"),
            "{}",
            answer.text
        );
    }
    for text in [NAME, WORDS] {
        let found = s
            .get(
                &format!("/v1/conversations?text={text}"),
                Some(&admin.token),
            )
            .await;
        assert_eq!(found.body["items"], json!([]));
    }
    for path in [
        conv(""),
        conv("/messages"),
        conv("/transcript?format=text"),
        file_path.clone(),
    ] {
        ok(
            &s.get(&path, Some(&admin.token)).await,
            StatusCode::NOT_FOUND,
        );
    }
    // The customer's token went with it; the bystander's conversation stays whole.
    assert_eq!(
        s.get(&conv(""), Some(&visitor)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let kept = s
        .get(
            &format!("/v1/conversations/{other}/messages"),
            Some(&admin.token),
        )
        .await;
    assert!(kept.text.contains("bystander words stay"), "{}", kept.text);
    let blank = s
        .get(&format!("/v1/contacts/{contact}"), Some(&admin.token))
        .await;
    assert_eq!(blank.body["name"], json!(null));
    assert_eq!(blank.body["email"], json!(null));
    assert_eq!(blank.body["metadata"], json!({}));

    // The audit record: who, when, which contact; the erased conversation's events say
    // only that it was deleted.
    let events = after.body["items"].as_array().unwrap();
    let audit: Vec<_> = events
        .iter()
        .filter(|e| e["payload"]["type"] == "contact_erased")
        .collect();
    assert_eq!(audit.len(), 1, "{}", after.text);
    assert_eq!(audit[0]["payload"]["contact_id"], contact.as_str());
    assert_eq!(audit[0]["payload"]["erased_by"], admin.id.to_string());
    assert_eq!(audit[0]["staff_only"], true);
    assert!(audit[0]["at"].is_string());
    for event in events {
        if event["conversation_id"] == id.as_str() {
            assert_eq!(event["payload"]["type"], "conversation_deleted", "{event}");
        }
    }

    // Nor any byte on disk: the database, its log, the search file, its log, the files.
    let mut every_file = files_in(s.dir());
    every_file.extend(files_in(&uploads));
    let names: Vec<String> = every_file
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"chat.db".to_owned()), "{names:?}");
    assert!(names.contains(&"chat.db-search".to_owned()), "{names:?}");
    assert_eq!(found_in(&every_file), Vec::<String>::new());
    s.stop().await;
}
