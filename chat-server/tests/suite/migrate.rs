//! `chat-server migrate`: a desk used through HTTP on SQLite, stopped, copied into
//! PostgreSQL, and served from there by the binary on the same uploads folder: the same
//! answers, the same logins and tokens, the same files. Needs `CHAT_TEST_POSTGRES_URL`;
//! without it the test says it was skipped (and fails under `CHAT_REQUIRE_SERVICES=1`).

use crate::services;

use std::ffi::{OsStr, OsString};
use std::path::Path;

use chat_server::testing::Process;
use hyper::Method;
use serde_json::{Value, json};
use services::{Schema, call, service_url};

const ADMIN: &str = "root@acme.example";
const PASSWORD: &str = "a long admin password";

fn args(db: &Path, uploads: &Path, store: Option<&str>) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "--db".into(),
        db.into(),
        "--uploads-dir".into(),
        uploads.into(),
        "--bot".into(),
        "none".into(),
        // The test's webhook and inbox name loopback URLs.
        "--webhooks-allow-private".into(),
    ];
    if let Some(store) = store {
        args.extend(["--store".into(), store.into()]);
    }
    args
}

/// Runs `chat-server <global args> migrate --from <from>` to its end.
fn migrate(global: &[OsString], from: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(global)
        .args([
            OsStr::new("migrate"),
            OsStr::new("--from"),
            from.as_os_str(),
        ])
        .output()
        .unwrap()
}

/// What the desk answers to staff: the inbox, one conversation's history, a search, the
/// webhooks, the inboxes and the event log.
async fn answers(server: &Process, token: &str, conversation: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    for path in [
        "/v1/conversations".to_owned(),
        format!("/v1/conversations/{conversation}/messages"),
        "/v1/conversations?text=kettle".to_owned(),
        "/v1/webhooks".to_owned(),
        "/v1/inboxes".to_owned(),
        "/v1/events?since=0&limit=1000".to_owned(),
    ] {
        let (status, body) = call(server, "GET", &path, Some(token), None).await;
        assert_eq!(status, 200, "{path}: {body}");
        seen.push(json!({ "path": path, "body": body }));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_desk_migrated_to_postgres_answers_the_same_with_the_same_logins_tokens_and_files()
{
    let Some(url) = service_url("CHAT_TEST_POSTGRES_URL") else {
        return;
    };
    let schema = Schema::create(&url).await;
    let store_url = schema.store_url();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sqlite").join("chat.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let uploads = dir.path().join("uploads");

    // The desk on SQLite, used through HTTP.
    let mut first = args(&db, &uploads, None);
    first.extend([
        "--admin-email".into(),
        ADMIN.into(),
        "--admin-password".into(),
        PASSWORD.into(),
    ]);
    let sqlite = Process::start(env!("CARGO_BIN_EXE_chat-server"), &first);
    let (status, login) = call(
        &sqlite,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({ "email": ADMIN, "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let token = login["access_token"].as_str().unwrap().to_owned();
    let (status, opened) = call(
        &sqlite,
        "POST",
        "/v1/conversations",
        None,
        Some(json!({ "first_message": "my kettle arrived broken" })),
    )
    .await;
    assert_eq!(status, 201, "{opened}");
    let conversation = opened["conversation"]["id"].as_str().unwrap().to_owned();
    let visitor = opened["visitor_token"].as_str().unwrap().to_owned();
    let mut photo = Vec::new();
    image::RgbImage::from_pixel(64, 32, image::Rgb([200, 30, 30]))
        .write_to(
            &mut std::io::Cursor::new(&mut photo),
            image::ImageFormat::Png,
        )
        .unwrap();
    let (form, body) =
        chat_server::testing::multipart(&[], &[("file", "kettle.png", "image/png", &photo)]);
    let uploaded = sqlite
        .send_as(
            Method::POST,
            &format!("/v1/conversations/{conversation}/files"),
            Some(&visitor),
            &[("content-type", form.as_str())],
            body,
        )
        .await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.text);
    let file = uploaded.body["items"][0].clone();
    let key = file["key"].as_str().unwrap().to_owned();
    for (who, body) in [
        (
            &visitor,
            json!({ "body": "here is the photo", "attachments": [file] }),
        ),
        (
            &token,
            json!({ "body": "sorry about the kettle, a new one is on its way" }),
        ),
    ] {
        let (status, posted) = call(
            &sqlite,
            "POST",
            &format!("/v1/conversations/{conversation}/messages"),
            Some(who),
            Some(body),
        )
        .await;
        assert_eq!(status, 201, "{posted}");
    }
    let (status, hook) = call(
        &sqlite,
        "POST",
        "/v1/webhooks",
        Some(&token),
        Some(json!({ "url": "http://127.0.0.1:9/hook" })),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    let (status, inbox) = call(
        &sqlite,
        "POST",
        "/v1/inboxes",
        Some(&token),
        Some(json!({ "name": "Shop app", "webhook_url": "http://127.0.0.1:9/inbox" })),
    )
    .await;
    assert_eq!(status, 201, "{inbox}");
    let before = answers(&sqlite, &token, &conversation).await;
    assert!(sqlite.terminate().success());

    // Copied into PostgreSQL; the servers there keep their key beside their own --db,
    // where the copy puts the SQLite server's.
    let pg_db = dir.path().join("pg").join("unused.db");
    std::fs::create_dir_all(pg_db.parent().unwrap()).unwrap();
    let second = args(&pg_db, &uploads, Some(&store_url));
    let output = migrate(&second, &db);
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(said.contains("1 tenants"), "{said}");
    let messages = before[1]["body"]["items"].as_array().unwrap().len();
    assert!(
        said.contains(&format!("  messages: {messages}\n")),
        "{said}"
    );
    assert!(said.contains("signing key: copied"), "{said}");
    assert_eq!(
        std::fs::read(pg_db.parent().unwrap().join("chat-signing.key")).unwrap(),
        std::fs::read(db.parent().unwrap().join("chat-signing.key")).unwrap()
    );

    let postgres = Process::start(env!("CARGO_BIN_EXE_chat-server"), &second);
    // The token issued on SQLite, and the same answers.
    let after = answers(&postgres, &token, &conversation).await;
    assert_eq!(after, before);
    // The visitor's token too, and the file and its thumbnail from the shared folder.
    for path in [key.clone(), format!("{key}.thumb.png")] {
        let got = postgres
            .get(
                &format!("/v1/conversations/{conversation}/files/{path}"),
                Some(&visitor),
            )
            .await;
        assert_eq!(got.status, 200, "{path}: {}", got.text);
        if !path.ends_with(".thumb.png") {
            assert_eq!(&got.bytes[..], &photo[..]);
        }
    }
    // The password still signs in, and the desk goes on: a new message follows the
    // copied ones in sequence.
    let (status, login) = call(
        &postgres,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({ "email": ADMIN, "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let (status, posted) = call(
        &postgres,
        "POST",
        &format!("/v1/conversations/{conversation}/messages"),
        Some(&visitor),
        Some(json!({ "body": "thank you" })),
    )
    .await;
    assert_eq!(status, 201, "{posted}");
    assert_eq!(posted["message"]["seq"], messages + 1, "{posted}");
    assert!(postgres.terminate().success());

    // Never into a database that holds data: refused, and nothing changes.
    let again = migrate(&second, &db);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("already holds data"), "{err}");
}
