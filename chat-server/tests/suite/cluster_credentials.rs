//! Credentials across a cluster: two `chat-server` processes over one PostgreSQL schema and
//! one NATS (`--store postgres://…`, `--bus nats://…`). An identity signature used on one
//! is refused by the other; a password changed, a staff member disabled or a bot token
//! revoked on one closes the other's open sockets of that credential at once (long before
//! their periodic re-check, a minute after they opened) and its HTTP answers 401 from
//! the next request. Needs `CHAT_TEST_POSTGRES_URL` and `CHAT_TEST_NATS_URL`; without them
//! the tests say they were skipped (and fail under `CHAT_REQUIRE_SERVICES=1`).

use std::time::{Duration, Instant};

use crate::services;

use chat_server::testing::Process;
use futures_util::StreamExt;
use serde_json::{Value, json};
use services::{ADMIN, ADMIN_PASSWORD, Nodes, call, service_url};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const SITE_SECRET: &str = "site-secret-shared-by-the-cluster";

/// Two servers on one fresh schema and one NATS prefix, sharing the signing key (so a
/// token of one works on the other) and the identity secret.
struct Cluster {
    a: Process,
    b: Process,
    nodes: Nodes,
}

async fn cluster() -> Option<Cluster> {
    let pg = service_url("CHAT_TEST_POSTGRES_URL")?;
    let nats = service_url("CHAT_TEST_NATS_URL")?;
    let nodes = Nodes::create(&pg).await;
    let mut flags = nodes.bus(&nats).to_vec();
    flags.extend(["--identity-secret", SITE_SECRET]);
    // One after the other: the first creates the schema and the admin.
    let a = nodes.start("a", &flags);
    assert_eq!(a.logged("chat-server listening").await["bus"], "nats");
    let b = nodes.start("b", &flags);
    assert_eq!(b.logged("chat-server listening").await["bus"], "nats");
    Some(Cluster { a, b, nodes })
}

async fn login(server: &Process, email: &str, password: &str) -> String {
    let (status, answer) = call(
        server,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({ "email": email, "password": password })),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer["access_token"].as_str().unwrap().to_owned()
}

/// A staff member made by the admin on `server`: its id.
async fn staff(server: &Process, admin: &str, email: &str, password: &str) -> String {
    let (status, made) = call(
        server,
        "POST",
        "/v1/agents",
        Some(admin),
        Some(json!({ "name": email, "email": email, "role": "supervisor", "password": password })),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    made["id"].as_str().unwrap().to_owned()
}

/// A socket on `server` opened with `token`, past its `hello`.
async fn socket(server: &Process, token: &str) -> (Ws, Instant) {
    let url = server.ws_url(&format!("/v1/ws?access_token={token}"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let opened = Instant::now();
    loop {
        match ws.next().await.expect("open").expect("a frame") {
            Message::Text(text) => {
                let hello: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(hello["type"], "hello", "{hello}");
                return (ws, opened);
            }
            other => assert!(!other.is_close(), "closed before hello: {other:?}"),
        }
    }
}

/// Waits for the socket to be closed for its credential, and says how long after it
/// opened that came: well before the periodic re-check (a minute after opening) shows
/// that the change itself closed it.
async fn closed_as_revoked(ws: &mut Ws, opened: Instant, what: &str) {
    let frame = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                other => panic!("{what}: the socket ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: the socket stayed open"));
    let frame = frame.unwrap_or_else(|| panic!("{what}: a close frame without a code"));
    assert_eq!(
        frame.code,
        CloseCode::Library(4001),
        "{what}: {}",
        frame.reason
    );
    assert!(
        opened.elapsed() < Duration::from_secs(55),
        "{what}: closed only by the periodic re-check"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_signature_used_on_one_node_is_refused_on_the_other() {
    let Some(c) = cluster().await else { return };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let email = "signed@example.com";
    let identity = json!({
        "email": email,
        "timestamp": now,
        "signature": chat_server::auth::sign_identity(SITE_SECRET.as_bytes(), email, now),
    });
    let open = |server| {
        call(
            server,
            "POST",
            "/v1/conversations",
            None,
            Some(json!({ "identity": identity })),
        )
    };
    let (status, opened) = open(&c.a).await;
    assert_eq!(status, 201, "{opened}");
    let (status, replayed) = open(&c.b).await;
    assert_eq!(status, 401, "{replayed}");
    assert!(replayed.to_string().contains("used already"), "{replayed}");
    let (status, again) = open(&c.a).await;
    assert_eq!(status, 401, "and on the first node again: {again}");

    // A new signature (another timestamp) opens the next visit, on either node.
    let later = now - 1;
    let fresh = json!({ "identity": {
        "email": email,
        "timestamp": later,
        "signature": chat_server::auth::sign_identity(SITE_SECRET.as_bytes(), email, later),
    }});
    let (status, next) = call(&c.b, "POST", "/v1/conversations", None, Some(fresh)).await;
    assert_eq!(status, 201, "{next}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_changed_on_one_node_closes_the_sockets_and_refuses_requests_on_the_other() {
    let Some(c) = cluster().await else { return };
    let admin = login(&c.a, ADMIN, ADMIN_PASSWORD).await;
    let id = staff(&c.a, &admin, "sam@acme.example", "sam's first password").await;
    let token = login(&c.b, "sam@acme.example", "sam's first password").await;
    let (status, _) = call(&c.b, "GET", "/v1/conversations", Some(&token), None).await;
    assert_eq!(status, 200);
    let (mut ws, opened) = socket(&c.b, &token).await;

    let (status, changed) = call(
        &c.a,
        "PATCH",
        &format!("/v1/agents/{id}"),
        Some(&admin),
        Some(json!({ "password": "sam's second password" })),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    let (status, refused) = call(&c.b, "GET", "/v1/conversations", Some(&token), None).await;
    assert_eq!(status, 401, "{refused}");
    closed_as_revoked(&mut ws, opened, "password change").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_member_disabled_on_one_node_is_shut_out_on_the_other() {
    let Some(c) = cluster().await else { return };
    let admin = login(&c.a, ADMIN, ADMIN_PASSWORD).await;
    let id = staff(&c.a, &admin, "dee@acme.example", "dee's long password").await;
    let token = login(&c.b, "dee@acme.example", "dee's long password").await;
    let (mut ws, opened) = socket(&c.b, &token).await;

    let (status, changed) = call(
        &c.a,
        "PATCH",
        &format!("/v1/agents/{id}"),
        Some(&admin),
        Some(json!({ "active": false })),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    let (status, refused) = call(&c.b, "GET", "/v1/conversations", Some(&token), None).await;
    assert_eq!(status, 401, "{refused}");
    closed_as_revoked(&mut ws, opened, "disabled staff member").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_token_revoked_on_one_node_is_refused_at_once_on_the_other() {
    let Some(c) = cluster().await else { return };
    let admin = login(&c.a, ADMIN, ADMIN_PASSWORD).await;
    let (status, issued) = call(
        &c.a,
        "POST",
        "/v1/bot-tokens",
        Some(&admin),
        Some(json!({ "name": "order-status bot" })),
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    let token = issued["token"].as_str().unwrap().to_owned();
    let id = issued["id"].as_str().unwrap().to_owned();
    // Used on the other node first: whatever it keeps of the token, it must let go.
    for _ in 0..2 {
        let (status, seen) = call(&c.b, "GET", "/v1/conversations", Some(&token), None).await;
        assert_eq!(status, 200, "{seen}");
    }
    let (mut ws, opened) = socket(&c.b, &token).await;

    let (status, revoked) = call(
        &c.a,
        "DELETE",
        &format!("/v1/bot-tokens/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 204, "{revoked}");
    let (status, refused) = call(&c.b, "GET", "/v1/conversations", Some(&token), None).await;
    assert_eq!(status, 401, "{refused}");
    closed_as_revoked(&mut ws, opened, "revoked bot token").await;
}

/// A server that stops right after a credential change committed (killed, its machine
/// gone) never gets to tell the others separately: the change's own write must carry the
/// notice. Here the change is that write alone, made through the store the servers share
/// (as the dying server's engine made it) with nothing published and nothing after it;
/// the other node's socket of that credential still closes at once, from the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_server_stops_right_after_its_write_still_closes_the_other_nodes_sockets() {
    use chat_core::Credentials;

    let Some(c) = cluster().await else { return };
    let admin = login(&c.a, ADMIN, ADMIN_PASSWORD).await;
    let id = staff(&c.a, &admin, "kim@acme.example", "kim's first password").await;
    let token = login(&c.b, "kim@acme.example", "kim's first password").await;
    let (mut ws, opened) = socket(&c.b, &token).await;

    let store = chat_postgres::PostgresStore::connect(&c.nodes.schema.store_url())
        .await
        .unwrap();
    let tenant = store.tenants().await.unwrap()[0].id;
    let agent = chat_core::AgentId(id.parse().unwrap());
    let hash = chat_server::auth::hash_password("kim's second password").unwrap();
    let (version, notice) = store
        .set_password(tenant, agent, &hash, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(version >= 2, "the login's version was bumped: {version}");
    assert_eq!(notice.payload, chat_core::EventPayload::CredentialsChanged);
    drop(store);

    let (status, refused) = call(&c.b, "GET", "/v1/conversations", Some(&token), None).await;
    assert_eq!(status, 401, "{refused}");
    closed_as_revoked(&mut ws, opened, "a change whose server stopped").await;
    // The first node, which was told nothing at all, refuses the old login too.
    let (status, refused) = call(&c.a, "GET", "/v1/conversations", Some(&token), None).await;
    assert_eq!(status, 401, "{refused}");
}
