//! Schemathesis (`st`, from PyPI) against the real binary's `/v1/openapi.json`: a short
//! pass as an admin and as a visitor. Any failure of any check fails the test: a server
//! error, an answer that breaks the documented schema, a schema-valid request refused, a
//! schema-violating request accepted. The long runs per role, and their figures, are in
//! the README.
//!
//! Without `st` it says so and passes, as the service tests do on a laptop; with
//! `CHAT_REQUIRE_SERVICES=1` (set by `.ci/run`, which installs it) a missing one fails.

use std::process::{Command, Stdio};

use chat_server::testing::Process;
use serde_json::json;

/// Operations left out, and why: `/metrics` and `/healthz` answer text for scrapers and
/// probes, `/v1/ws` speaks WebSocket after an upgrade no HTTP fuzzer makes, and an e-mail
/// inbox takes a raw RFC 5322 message (`message/rfc822`), which schemathesis has no
/// serializer for (its bad input is played in `tests/suite/email_channel.rs`).
const EXCLUDED: &str = "^/(metrics|healthz|v1/ws|v1/inboxes/\\{id\\}/email)$";

fn st_found() -> bool {
    Command::new("st")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Starts `st` against `server` with `token` (if any).
fn schemathesis(server: &Process, token: Option<&str>) -> std::process::Child {
    let mut st = Command::new("st");
    // Which checks run, and the exceptions of `ensure_resource_availability` (404s that
    // the documented API gives and the check cannot tell from a lost resource), each with
    // its reason: every check but `positive_data_acceptance`.
    st.arg("--config-file").arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/schemathesis.toml"
    ));
    st.arg("run")
        .arg(format!("http://{}/v1/openapi.json", server.addr))
        .args(["--max-examples", "5", "--workers", "1"])
        .args(["--exclude-path-regex", EXCLUDED])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(token) = token {
        st.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    st.spawn().expect("st starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_keeps_its_documented_contract_for_an_admin_and_a_visitor() {
    if !st_found() {
        let why = "schemathesis skipped: `st` not installed (pip install schemathesis==4.32.5)";
        assert!(
            std::env::var("CHAT_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "{why}"
        );
        eprintln!("{why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    // Limits far above what a fuzzer sends, so every answer is the endpoint's own.
    let server = Process::start(
        env!("CARGO_BIN_EXE_chat-server"),
        [
            "--db".as_ref(),
            db.as_os_str(),
            "--demo".as_ref(),
            "--rate-per-ip".as_ref(),
            "100000".as_ref(),
            "--rate-per-token".as_ref(),
            "100000".as_ref(),
            "--rate-burst".as_ref(),
            "100000".as_ref(),
            "--login-free-attempts".as_ref(),
            "100000".as_ref(),
            "--login-free-attempts-per-address".as_ref(),
            "100000".as_ref(),
        ],
    );
    let login = server
        .post(
            "/v1/auth/login",
            None,
            json!({ "email": "admin@demo.example", "password": "demo-password" }),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let admin = login.body["access_token"].as_str().unwrap().to_owned();
    let opened = server.post("/v1/conversations", None, json!({})).await;
    assert_eq!(opened.status, 201, "{}", opened.text);
    let visitor = opened.body["visitor_token"].as_str().unwrap().to_owned();

    // Both at once: each is single-threaded Python, and the two roles share nothing.
    let runs = [
        ("admin", schemathesis(&server, Some(&admin))),
        ("visitor", schemathesis(&server, Some(&visitor))),
    ];
    let mut failed = Vec::new();
    for (role, child) in runs {
        let run = tokio::task::block_in_place(|| child.wait_with_output()).expect("st runs");
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        // Shown with --nocapture; a failure carries the whole report.
        println!("== {role}\n{out}");
        if !run.status.success() {
            failed.push(format!("== {role}\n{out}"));
        }
    }
    assert!(
        failed.is_empty(),
        "schemathesis found failures:\n{}",
        failed.join("\n")
    );
    assert!(server.terminate().success());
}
