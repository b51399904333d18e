//! The tenant export as JSON Lines and its import: a desk with every kind of record, made
//! through the API on a SQLite file, exported over HTTP (admins, no secrets, streamed) and
//! with `chat-server export`; `chat-server import` reads it into a fresh file whose own
//! export is the same bytes and whose reads through the engine are the same answers.

use crate::services;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use chat_core::{Actor, Engine, NewAgent, Role, TenantSettings};
use chat_server::testing::TestServer;
use chat_server::{Config, auth};
use hyper::StatusCode;
use serde_json::{Value, json};

const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";
const PASSWORD: &str = "correct horse battery";

/// A server on the SQLite file `db` (creating the tenant on an empty one).
async fn serve(db: &Path) -> (Engine, TestServer) {
    serve_backend(Arc::new(chat_sqlite::SqliteStore::open(db).unwrap())).await
}

/// A server on `backend` (creating the tenant on an empty one).
async fn serve_backend(backend: Arc<dyn chat_core::Backend>) -> (Engine, TestServer) {
    serve_built(
        Engine::builder_with_backend(backend)
            .passwords(Arc::new(auth::Argon2Passwords))
            .build(),
    )
    .await
}

/// A server on the SQLite file `db` whose files live in `uploads` (as the binary keeps
/// them), with image thumbnails.
async fn serve_with_files(db: &Path, uploads: &Path) -> (Engine, TestServer) {
    serve_built(
        Engine::builder_with_backend(Arc::new(chat_sqlite::SqliteStore::open(db).unwrap()))
            .blobs(Arc::new(
                chat_server::uploads::DirBlobStore::new(uploads).unwrap(),
            ))
            .thumbnails(Arc::new(chat_server::thumbnails::ImageThumbnails::default()))
            .build(),
    )
    .await
}

/// A server on `engine` (creating the tenant on an empty store).
async fn serve_built(engine: Engine) -> (Engine, TestServer) {
    let tenant = match engine.tenants().await.unwrap().first() {
        Some(t) => t.id,
        None => {
            engine
                .create_tenant("Acme", TenantSettings::default())
                .await
                .unwrap()
                .id
        }
    };
    let mut config = Config::new(SECRET);
    config.default_tenant = Some(tenant);
    config.limits.per_ip_rps = 0.0;
    config.limits.per_token_rps = 0.0;
    config.webhooks.allow_private = true;
    let server = TestServer::start(engine.clone(), config, None).await;
    (engine, server)
}

async fn login(server: &TestServer, email: &str) -> String {
    let reply = server
        .post(
            "/v1/auth/login",
            None,
            json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body["access_token"].as_str().unwrap().to_owned()
}

async fn ok(server: &TestServer, path: &str, token: Option<&str>, body: Value) -> Value {
    let reply = server.post(path, token, body).await;
    assert!(reply.status.is_success(), "{path}: {}", reply.text);
    reply.body
}

/// What the seeding leaves for the checks.
struct Desk {
    admin: String,
    agent: String,
    visitor: String,
    conversations: Vec<String>,
}

/// Staff with passwords, a handed-off conversation assigned, answered, tagged, noted with a
/// mention, read, closed, rated, reopened and closed again; one left with the bot; a
/// customer account; a shared canned response; a webhook (and its outbox); a bot token.
async fn seed(engine: &Engine, server: &TestServer) -> Desk {
    let tenant = engine.tenants().await.unwrap()[0].id;
    let system = Actor::System { tenant };
    let mut ids = Vec::new();
    for (name, role) in [
        ("Ada", Role::Admin),
        ("Ann", Role::Agent),
        ("Bob", Role::Agent),
    ] {
        let agent = engine
            .create_agent(
                &system,
                NewAgent {
                    name: name.into(),
                    email: format!("{}@acme.example", name.to_lowercase()),
                    role,
                    capacity: None,
                    departments: vec!["billing".into()],
                },
            )
            .await
            .unwrap();
        engine
            .set_password(&system, agent.id, &auth::hash_password(PASSWORD).unwrap())
            .await
            .unwrap();
        ids.push(agent.id);
    }
    let admin = login(server, "ada@acme.example").await;
    let ann = login(server, "ann@acme.example").await;
    let ann_id = ids[1];
    // First, so that every later event has a delivery in its outbox.
    ok(
        server,
        "/v1/webhooks",
        Some(&admin),
        json!({ "url": "http://127.0.0.1:9/hook", "secret": "a-webhook-secret-of-some-length" }),
    )
    .await;
    // An API inbox with one customer thread, so inboxes and their threads travel too.
    let inbox = ok(
        server,
        "/v1/inboxes",
        Some(&admin),
        json!({ "name": "Shop app", "webhook_url": "http://127.0.0.1:9/inbox" }),
    )
    .await;
    ok(
        server,
        &format!("/v1/inboxes/{}/messages", inbox["id"].as_str().unwrap()),
        inbox["token"].as_str(),
        json!({
            "contact": { "id": "app-user-7", "name": "Ivo" },
            "message": { "id": "app-msg-1", "text": "Hello from the app" },
        }),
    )
    .await;

    let opened = ok(
        server,
        "/v1/conversations",
        None,
        json!({ "contact": { "name": "Vera", "email": "vera@example.com" } }),
    )
    .await;
    let a = opened["conversation"]["id"].as_str().unwrap().to_owned();
    let visitor = opened["visitor_token"].as_str().unwrap().to_owned();
    let path = |tail: &str| format!("/v1/conversations/{a}/{tail}");
    ok(
        server,
        &path("messages"),
        Some(&visitor),
        json!({ "body": "My invoice is wrong" }),
    )
    .await;
    ok(server, &path("handoff"), Some(&visitor), json!({})).await;
    ok(
        server,
        &path("assign"),
        Some(&admin),
        json!({ "agent_id": ann_id }),
    )
    .await;
    ok(
        server,
        &path("messages"),
        Some(&ann),
        json!({ "body": "Let me look, Vera." }),
    )
    .await;
    ok(
        server,
        &path("notes"),
        Some(&ann),
        json!({ "body": "@bob is this the March bug?" }),
    )
    .await;
    let patched = server
        .patch(
            &format!("/v1/conversations/{a}"),
            Some(&admin),
            json!({ "tags": ["invoice", "vip"], "priority": "high", "department": "billing" }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    ok(server, &path("read"), Some(&visitor), json!({ "seq": 2 })).await;
    ok(server, &path("close"), Some(&ann), json!({})).await;
    ok(
        server,
        &path("rating"),
        Some(&visitor),
        json!({ "score": 4, "feedback": "Quick, thanks" }),
    )
    .await;
    ok(server, &path("reopen"), Some(&ann), json!({})).await;
    ok(
        server,
        &path("messages"),
        Some(&ann),
        json!({ "body": "Corrected invoice sent." }),
    )
    .await;
    ok(server, &path("close"), Some(&ann), json!({})).await;

    let bot = ok(
        server,
        "/v1/conversations",
        None,
        json!({ "contact": { "name": "Otto" } }),
    )
    .await;
    let b = bot["conversation"]["id"].as_str().unwrap().to_owned();
    let otto = bot["visitor_token"].as_str().unwrap().to_owned();
    ok(
        server,
        &format!("/v1/conversations/{b}/messages"),
        Some(&otto),
        json!({ "body": "Opening hours?" }),
    )
    .await;

    ok(
        server,
        "/v1/accounts",
        None,
        json!({ "username": "Carla", "email": "carla@example.com", "password": "carla-password" }),
    )
    .await;
    ok(server, "/v1/canned-responses", Some(&admin), json!({ "shared": true, "shortcut": "hi", "title": "Greeting", "body": "Hello {{contact.name}}!" })).await;
    ok(
        server,
        "/v1/bot-tokens",
        Some(&admin),
        json!({ "name": "CRM" }),
    )
    .await;
    Desk {
        admin,
        agent: ann,
        visitor,
        conversations: vec![a, b],
    }
}

fn chat_server(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn export_store(url: &str, to: &Path) -> std::process::Output {
    chat_server(&[
        "--store".as_ref(),
        url.as_ref(),
        "export".as_ref(),
        "--to".as_ref(),
        to.as_os_str(),
    ])
}

fn import_store(url: &str, from: &Path) -> std::process::Output {
    chat_server(&[
        "--store".as_ref(),
        url.as_ref(),
        "import".as_ref(),
        "--from".as_ref(),
        from.as_os_str(),
    ])
}

fn export(db: &Path, to: &Path) -> std::process::Output {
    chat_server(&[
        "--db".as_ref(),
        db.as_os_str(),
        "export".as_ref(),
        "--to".as_ref(),
        to.as_os_str(),
    ])
}

fn import(db: &Path, from: &Path) -> std::process::Output {
    chat_server(&[
        "--db".as_ref(),
        db.as_os_str(),
        "import".as_ref(),
        "--from".as_ref(),
        from.as_os_str(),
    ])
}

fn succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn kinds(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// The answers a desk gives to the same questions, as the admin sees them.
async fn reads(server: &TestServer, admin: &str, conversations: &[String]) -> Vec<Value> {
    let today = time::OffsetDateTime::now_utc().date();
    let mut paths = vec![
        "/v1/conversations".to_owned(),
        "/v1/contacts".to_owned(),
        "/v1/agents".to_owned(),
        "/v1/canned-responses".to_owned(),
        "/v1/settings".to_owned(),
        format!("/v1/reports/overview?from={today}&to={today}"),
        format!("/v1/reports/feedback?from={today}&to={today}"),
        format!("/v1/reports/breakdown?by=tag&from={today}&to={today}"),
    ];
    for c in conversations {
        paths.push(format!("/v1/conversations/{c}"));
        paths.push(format!("/v1/conversations/{c}/messages"));
        paths.push(format!("/v1/conversations/{c}/read"));
        paths.push(format!("/v1/conversations/{c}/transcript?format=json"));
    }
    let mut out = Vec::new();
    for path in paths {
        let reply = server.get(&path, Some(admin)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
        out.push(json!({ "path": path, "body": reply.body }));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_imported_into_an_empty_database_exports_the_same_bytes_and_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let first: PathBuf = dir.path().join("first.db");
    let (engine, server) = serve(&first).await;
    let desk = seed(&engine, &server).await;

    // Over HTTP: admins only, streamed as JSON Lines, without secrets.
    let streamed = server.get("/v1/export", Some(&desk.admin)).await;
    assert_eq!(streamed.status, StatusCode::OK, "{}", streamed.text);
    assert_eq!(streamed.headers["content-type"], "application/x-ndjson");
    assert_eq!(streamed.headers["transfer-encoding"], "chunked");
    let lines: Vec<&str> = streamed.text.lines().collect();
    let header: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(header["kind"], "header");
    assert_eq!(header["format"], "chat-export");
    assert_eq!(header["secrets"], false);
    let end: Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
    assert_eq!(end, json!({ "kind": "end", "records": lines.len() - 2 }));
    for secret in ["argon2", "a-webhook-secret-of-some-length"] {
        assert!(
            !streamed.text.contains(secret),
            "{secret} in an HTTP export"
        );
    }
    let seen = kinds(&streamed.text);
    for kind in [
        "tenants",
        "agents",
        "contacts",
        "accounts",
        "conversations",
        "conversation_tags",
        "conversation_participants",
        "messages",
        "read_cursors",
        "conversation_reopens",
        "events",
        "canned_responses",
        "mentions",
        "webhooks",
        "webhook_deliveries",
        "inboxes",
        "inbox_threads",
    ] {
        assert!(seen.contains(kind), "no {kind} line in {seen:?}");
    }
    for kind in ["credentials", "visitor_tokens", "bot_tokens"] {
        assert!(!seen.contains(kind), "{kind} is a secret");
    }
    let refused = server.get("/v1/export", Some(&desk.agent)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert_eq!(
        server.get("/v1/export", Some(&desk.visitor)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server.get("/v1/export", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let before = reads(&server, &desk.admin, &desk.conversations).await;
    server.stop().await;
    drop(engine);

    // The operator's export: secrets in it, owner-only.
    let exported = dir.path().join("first.jsonl");
    succeeded(&export(&first, &exported));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&exported).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "an export holds password hashes: owner-only");
    }
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(
        text.contains("argon2"),
        "staff password hashes travel with the operator's export"
    );
    let seen = kinds(&text);
    for kind in ["credentials", "visitor_tokens", "bot_tokens"] {
        assert!(seen.contains(kind), "no {kind} line in {seen:?}");
    }
    // Never over a file.
    assert!(!export(&first, &exported).status.success());

    // Into an empty file, and out again: the same bytes.
    let second = dir.path().join("second.db");
    succeeded(&import(&second, &exported));
    let again = dir.path().join("second.jsonl");
    succeeded(&export(&second, &again));
    assert!(
        std::fs::read(&exported).unwrap() == std::fs::read(&again).unwrap(),
        "the second export differs from the first"
    );

    // Not into a database that holds data; not a cut-off file (and that leaves nothing).
    let refused = import(&first, &exported);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already holds data"));
    let cut = dir.path().join("cut.jsonl");
    let all: Vec<&str> = text.lines().collect();
    std::fs::write(&cut, all[..all.len() - 1].join("\n")).unwrap();
    let third = dir.path().join("third.db");
    let refused = import(&third, &cut);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("cut off"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    succeeded(&import(&third, &exported));

    // The same answers through the engine, to staff who log in with their old passwords
    // and to the visitor with its old token.
    let (engine, server) = serve(&second).await;
    let admin = login(&server, "ada@acme.example").await;
    let after = reads(&server, &admin, &desk.conversations).await;
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a);
    }
    assert_eq!(before.len(), after.len());
    let own = server
        .get(
            &format!("/v1/conversations/{}", desk.conversations[0]),
            Some(&desk.visitor),
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    server.stop().await;
    drop(engine);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_export_imported_into_an_empty_schema_exports_the_same_bytes_and_reads_the_same()
{
    let Some(url) = services::service_url("CHAT_TEST_POSTGRES_URL") else {
        return;
    };
    let (first, second) = (
        services::Schema::create(&url).await,
        services::Schema::create(&url).await,
    );
    let dir = tempfile::tempdir().unwrap();
    let store = chat_postgres::PostgresStore::connect(&first.store_url())
        .await
        .unwrap();
    let (engine, server) = serve_backend(Arc::new(store)).await;
    let desk = seed(&engine, &server).await;
    let before = reads(&server, &desk.admin, &desk.conversations).await;
    server.stop().await;
    drop(engine);

    let exported = dir.path().join("first.jsonl");
    succeeded(&export_store(&first.store_url(), &exported));
    let header: Value = serde_json::from_str(
        std::fs::read_to_string(&exported)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["store"], "postgres");
    succeeded(&import_store(&second.store_url(), &exported));
    let again = dir.path().join("second.jsonl");
    succeeded(&export_store(&second.store_url(), &again));
    assert!(
        std::fs::read(&exported).unwrap() == std::fs::read(&again).unwrap(),
        "the second export differs from the first"
    );
    let refused = import_store(&first.store_url(), &exported);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already holds data"));
    // Rows are each store's own: a SQLite file's export is refused by name.
    let sqlite = dir.path().join("sqlite.db");
    let (engine, server) = serve(&sqlite).await;
    server.stop().await;
    drop(engine);
    let sqlite_export = dir.path().join("sqlite.jsonl");
    succeeded(&export(&sqlite, &sqlite_export));
    let third = services::Schema::create(&url).await;
    let refused = import_store(&third.store_url(), &sqlite_export);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("written by the sqlite store"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let store = chat_postgres::PostgresStore::connect(&second.store_url())
        .await
        .unwrap();
    let (engine, server) = serve_backend(Arc::new(store)).await;
    let admin = login(&server, "ada@acme.example").await;
    let after = reads(&server, &admin, &desk.conversations).await;
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a);
    }
    server.stop().await;
    drop(engine);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_of_an_export_go_beside_it_and_downloads_work_after_the_import() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("first")).unwrap();
    std::fs::create_dir_all(dir.path().join("second")).unwrap();
    let first = dir.path().join("first").join("chat.db");
    let (engine, server) = serve_with_files(&first, &dir.path().join("first/uploads")).await;
    let opened = ok(
        &server,
        "/v1/conversations",
        None,
        json!({ "contact": { "name": "Vera" } }),
    )
    .await;
    let conversation = opened["conversation"]["id"].as_str().unwrap().to_owned();
    let visitor = opened["visitor_token"].as_str().unwrap().to_owned();
    // An image (it gets a thumbnail) and a text file, sent with a message; a third file
    // uploaded but never sent is not the conversation's and stays behind.
    let mut photo = Vec::new();
    image::RgbImage::from_pixel(64, 32, image::Rgb([200, 30, 30]))
        .write_to(
            &mut std::io::Cursor::new(&mut photo),
            image::ImageFormat::Png,
        )
        .unwrap();
    let text = b"order 4417: two kettles, one returned".to_vec();
    let mut sent = Vec::new();
    for (name, content_type, bytes) in [
        ("photo.png", "image/png", &photo),
        ("order.txt", "text/plain", &text),
        ("draft.txt", "text/plain", &text),
    ] {
        let (form, body) =
            chat_server::testing::multipart(&[], &[("file", name, content_type, bytes)]);
        let reply = server
            .send_as(
                hyper::Method::POST,
                &format!("/v1/conversations/{conversation}/files"),
                Some(&visitor),
                &[("content-type", form.as_str())],
                body,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        sent.push(reply.body["items"][0].clone());
    }
    let draft = sent.pop().unwrap();
    ok(
        &server,
        &format!("/v1/conversations/{conversation}/messages"),
        Some(&visitor),
        json!({ "body": "the photo and the order", "attachments": sent }),
    )
    .await;
    server.stop().await;
    drop(engine);

    let exported = dir.path().join("acme.jsonl");
    let output = export(&first, &exported);
    succeeded(&output);
    let said = String::from_utf8_lossy(&output.stdout);
    // The photo, its thumbnail and the order; not the draft.
    assert!(said.contains("; 3 files ("), "{said}");
    let files = dir.path().join("acme.jsonl.files");
    let mut copied: Vec<String> = chat_server::uploads::DirBlobStore::new(&files)
        .unwrap()
        .keys()
        .unwrap();
    copied.sort();
    let mut expected = vec![
        sent[0]["key"].as_str().unwrap().to_owned(),
        format!("{}.thumb.png", sent[0]["key"].as_str().unwrap()),
        sent[1]["key"].as_str().unwrap().to_owned(),
    ];
    expected.sort();
    assert_eq!(copied, expected);
    assert!(!copied.contains(&draft["key"].as_str().unwrap().to_owned()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "customers' files: owner-only");
    }
    // Never over an earlier export or its files.
    let again = export(&first, &exported);
    assert!(!again.status.success());

    // Imported into another folder's database: the files land in its uploads folder.
    let second = dir.path().join("second").join("chat.db");
    let output = import(&second, &exported);
    succeeded(&output);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("; 3 files ("),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let (engine, server) = serve_with_files(&second, &dir.path().join("second/uploads")).await;
    for (file, bytes) in [(&sent[0], &photo), (&sent[1], &text)] {
        let got = server
            .get(
                &format!(
                    "/v1/conversations/{conversation}/files/{}",
                    file["key"].as_str().unwrap()
                ),
                Some(&visitor),
            )
            .await;
        assert_eq!(got.status, StatusCode::OK, "{}", got.text);
        assert_eq!(&got.bytes[..], &bytes[..]);
    }
    let thumb = server
        .get(
            &format!(
                "/v1/conversations/{conversation}/files/{}.thumb.png",
                sent[0]["key"].as_str().unwrap()
            ),
            Some(&visitor),
        )
        .await;
    assert_eq!(thumb.status, StatusCode::OK, "{}", thumb.text);
    server.stop().await;
    drop(engine);

    // --without-files leaves the folder out.
    let bare = dir.path().join("bare.jsonl");
    succeeded(&chat_server(&[
        "--db".as_ref(),
        first.as_os_str(),
        "export".as_ref(),
        "--to".as_ref(),
        bare.as_os_str(),
        "--without-files".as_ref(),
    ]));
    assert!(!dir.path().join("bare.jsonl.files").exists());
}
