//! The browser suite (`tests/browser/`, Node + playwright-core + Debian's chromium) as one
//! test of `cargo test`, so the README's one test command runs it too, against this very
//! build of the binary.
//!
//! Without `node` or `chromium` it says so and passes, as the service tests do on a
//! laptop; with `CHAT_REQUIRE_SERVICES=1` (set by `.ci/run`) a missing one fails.

use std::path::{Path, PathBuf};
use std::process::Command;

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser")
}

fn found(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_console_and_the_widget_pass_in_a_real_browser() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing: Vec<&str> = [
        ("node", found("node", "--version")),
        ("npm", found("npm", "--version")),
        ("chromium", Path::new(&chromium).exists()),
    ]
    .into_iter()
    .filter_map(|(name, there)| (!there).then_some(name))
    .collect();
    if !missing.is_empty() {
        let why = format!(
            "browser suite skipped: {} not installed (apt-get install -y chromium nodejs npm)",
            missing.join(", ")
        );
        assert!(
            std::env::var("CHAT_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "{why}"
        );
        eprintln!("{why}");
        return;
    }
    let dir = suite_dir();
    // The lock file pins playwright-core and axe-core; `npm ci` installs exactly those.
    if !dir.join("node_modules/playwright-core").exists() {
        let npm = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&dir)
            .output()
            .expect("npm runs");
        assert!(
            npm.status.success(),
            "npm ci failed:\n{}{}",
            String::from_utf8_lossy(&npm.stdout),
            String::from_utf8_lossy(&npm.stderr)
        );
    }
    let run = Command::new("node")
        .arg("run.mjs")
        .current_dir(&dir)
        .env("CHAT_SERVER_BIN", env!("CARGO_BIN_EXE_chat-server"))
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    // Shown with --nocapture; the outcome of each test is in the failure message too.
    println!("{out}");
    assert!(run.status.success(), "the browser suite failed:\n{out}");
}
