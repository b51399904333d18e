//! A full disk under the SQLite server: the binary runs on a database in a small tmpfs
//! this test mounts, a filler file takes the rest of the space, and visitors keep posting.
//! Posts then answer 503 `storage_full` with nothing half-written, reads keep working, and
//! once the filler is gone, writes resume and the search index catches up, all without a
//! restart.
//!
//! Mounting needs root (sessions and CI run as root). Elsewhere the test says so and
//! skips, unless `CHAT_REQUIRE_SERVICES=1`, when it fails.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chat_server::testing::{HttpClient, Process};
use serde_json::{Value, json};

/// Room for the schema, the write-ahead log and the search file, and little more.
const FILESYSTEM: &str = "24m";
/// Posts tried while the disk is full before the test gives up on a 503.
const MAX_POSTS_UNTIL_FULL: usize = 20_000;

/// A tmpfs mounted on a temporary directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a server that panicked mid-test may still hold files open.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes a file until the filesystem refuses another byte, then gives `headroom` bytes
/// back, so that the server's own writes are what fill the disk.
fn fill(path: &Path, headroom: u64) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0x5a; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&block) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(libc_enospc()) => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    let kept = written.saturating_sub(headroom);
    file.set_len(kept).unwrap();
    kept
}

/// ENOSPC on Linux (the only system where this test mounts anything).
const fn libc_enospc() -> i32 {
    28
}

fn start(db: &Path) -> Process {
    let args: Vec<&OsStr> = vec![
        OsStr::new("--db"),
        db.as_os_str(),
        OsStr::new("--bot"),
        OsStr::new("none"),
        OsStr::new("--rate-per-ip"),
        OsStr::new("1000000"),
        OsStr::new("--rate-per-token"),
        OsStr::new("1000000"),
        OsStr::new("--rate-burst"),
        OsStr::new("1000000"),
    ];
    Process::start(env!("CARGO_BIN_EXE_chat-server"), args)
}

fn create_admin(db: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("--db")
        .arg(db)
        .args([
            "admin",
            "create",
            "--email",
            "root@full.example",
            "--password",
            "a long admin password",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn post_body(n: usize) -> Value {
    // A word per message for the search index, and enough text that the disk fills soon.
    json!({
        "body": format!("marker{n} {}", "x".repeat(2000)),
        "client_message_id": format!("m{n}"),
    })
}

/// The visitor's messages (by `client_message_id`) with how often each is stored.
async fn history(client: &HttpClient, path: &str, token: &str) -> BTreeMap<String, usize> {
    let mut after = 0u64;
    let mut copies = BTreeMap::new();
    loop {
        let page = client
            .get(&format!("{path}?after={after}&limit=100"), Some(token))
            .await;
        assert_eq!(page.status, 200, "reads keep working: {}", page.text);
        let items = page.body["items"].as_array().expect("a page").clone();
        if items.is_empty() {
            return copies;
        }
        for m in &items {
            after = after.max(m["seq"].as_u64().expect("a sequence"));
            if let Some(id) = m["client_message_id"].as_str() {
                *copies.entry(id.to_owned()).or_default() += 1;
            }
        }
    }
}

/// Whether a staff search for `word` finds the conversation.
async fn found(client: &HttpClient, admin: &str, word: &str, conversation: &str) -> bool {
    let reply = client
        .get(&format!("/v1/conversations?text={word}"), Some(admin))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["items"]
        .as_array()
        .expect("a list")
        .iter()
        .any(|c| c["id"] == conversation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_loses_nothing_and_recovers_by_itself() {
    let disk = match Tmpfs::mount(FILESYSTEM) {
        Ok(disk) => disk,
        Err(why) if std::env::var("CHAT_REQUIRE_SERVICES").as_deref() != Ok("1") => {
            eprintln!("skipped: cannot mount a tmpfs here ({why}); run as root");
            return;
        }
        Err(why) => panic!("cannot mount a tmpfs ({why}) and CHAT_REQUIRE_SERVICES=1"),
    };
    let db: PathBuf = disk.path().join("chat.db");
    create_admin(&db);
    let server = start(&db);
    let login = server
        .post(
            "/v1/auth/login",
            None,
            json!({ "email": "root@full.example", "password": "a long admin password" }),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let admin = login.body["access_token"].as_str().unwrap().to_owned();
    let opened = server
        .post("/v1/conversations", None, json!({ "title": "full disk" }))
        .await;
    assert_eq!(opened.status, 201, "{}", opened.text);
    let conversation = opened.body["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = opened.body["visitor_token"].as_str().unwrap().to_owned();
    let path = format!("/v1/conversations/{conversation}/messages");

    let first = server.post(&path, Some(&token), post_body(0)).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let mut acked = vec![0];

    // Take what is left of the disk but a megabyte, then post until the server says it
    // is full.
    let filler = disk.path().join("filler");
    let filled = fill(&filler, 1024 * 1024);
    let mut refused = None;
    for n in 1..MAX_POSTS_UNTIL_FULL {
        let reply = server.post(&path, Some(&token), post_body(n)).await;
        match reply.status.as_u16() {
            201 => acked.push(n),
            503 => {
                assert_eq!(reply.error_code(), "storage_full", "{}", reply.text);
                refused = Some(n);
                break;
            }
            other => panic!("post m{n} on a full disk answered {other}: {}", reply.text),
        }
    }
    let refused = refused.unwrap_or_else(|| {
        panic!("{MAX_POSTS_UNTIL_FULL} posts and no 503 after filling {filled} bytes")
    });
    // Still full: a second attempt is refused the same way, and changes nothing. (The
    // refused write gave back the log and journal space it had taken, which the same
    // post could fit in now: what is left is taken first, but a few pages.)
    let rest = disk.path().join("filler-rest");
    fill(&rest, 8 * 1024);
    let again = server.post(&path, Some(&token), post_body(refused)).await;
    assert_eq!(
        (again.status.as_u16(), again.error_code()),
        (503, "storage_full"),
        "{}",
        again.text
    );

    // Reads keep working, and show exactly what was acknowledged: no half-written post.
    let stored = history(&server, &path, &token).await;
    let expected: BTreeMap<String, usize> = acked.iter().map(|n| (format!("m{n}"), 1)).collect();
    assert_eq!(
        stored, expected,
        "a full disk kept exactly the acknowledged posts"
    );
    let health = server.get("/healthz", None).await;
    assert_eq!(health.status, 200, "{}", health.text);

    // Space returns: the refused post goes through without a restart, and is new (201,
    // not the 200 of a post that had been stored after all).
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(&rest).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = server.post(&path, Some(&token), post_body(refused)).await;
        match reply.status.as_u16() {
            201 => break,
            503 if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!(
                "after space returned, the post answered {other}: {}",
                reply.text
            ),
        }
    }
    acked.push(refused);
    let next = refused + 1;
    let reply = server.post(&path, Some(&token), post_body(next)).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    acked.push(next);

    let stored = history(&server, &path, &token).await;
    let expected: BTreeMap<String, usize> = acked.iter().map(|n| (format!("m{n}"), 1)).collect();
    assert_eq!(
        stored, expected,
        "after recovery, each acknowledged post once"
    );

    // The search index catches up with what was written before, during and after.
    let last_before_full = *acked.iter().filter(|n| **n < refused).max().unwrap();
    for n in [0, last_before_full, refused, next] {
        let word = format!("marker{n}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !found(&server, &admin, &word, &conversation).await {
            assert!(Instant::now() < deadline, "search never found {word}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    eprintln!(
        "{} posts acknowledged before the disk was full ({filled} bytes of filler), post m{refused} refused with 503 and stored once after space returned",
        acked.len() - 2
    );
    assert!(server.terminate().success());
}
