//! Acknowledged means durable: a writer process is killed with SIGKILL at a random moment,
//! again and again, and every message it acknowledged is still there afterwards, with
//! gap-free sequences and a sound file.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chat_core::{MessageId, Store, TenantId};
use chat_sqlite::SqliteStore;
use uuid::Uuid;

const ROUNDS: usize = 20;
const TENANT: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);

/// xorshift64*, seeded from the clock: a different kill schedule every run, printed so a
/// failing run can be told apart.
struct Rng(u64);

impl Rng {
    fn from_clock() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Rng(nanos | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

struct Ack {
    conversation: Uuid,
    seq: u64,
    message: Uuid,
}

fn parse(line: &str) -> Option<Ack> {
    let mut parts = line.strip_prefix("ack ")?.split(' ');
    let ack = Ack {
        conversation: parts.next()?.parse().ok()?,
        seq: parts.next()?.parse().ok()?,
        message: parts.next()?.parse().ok()?,
    };
    parts.next().is_none().then_some(ack)
}

/// Runs the writer until it says `ready`, lets it post for `run`, kills it, and returns
/// the messages it acknowledged.
fn kill_round(db: &std::path::Path, run: Duration) -> Vec<Ack> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_durability_writer"))
        .arg(db)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the writer");
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let ready = received
        .recv_timeout(Duration::from_secs(30))
        .expect("the writer got ready");
    assert_eq!(ready, "ready");
    std::thread::sleep(run);
    child.kill().expect("SIGKILL the writer");
    child.wait().unwrap();
    reader.join().unwrap();
    // A line cut by the kill has no newline and fails to parse: it was never complete.
    received.try_iter().filter_map(|l| parse(&l)).collect()
}

fn check(db: &std::path::Path, acked: &[Ack], runtime: &tokio::runtime::Runtime) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    // Every conversation's messages are exactly 1..=last_seq.
    let mut stmt = conn
        .prepare(
            "SELECT c.last_seq, count(m.seq), coalesce(min(m.seq), 0), coalesce(max(m.seq), 0) \
             FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id GROUP BY c.id",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (last_seq, count, min, max) = row.unwrap();
        assert_eq!(
            (count, max),
            (last_seq, last_seq),
            "sequences of a conversation have a gap"
        );
        assert!(count == 0 || min == 1);
    }
    let gaps: i64 = conn
        .query_row(
            "SELECT count(*) - (max(seq) - min(seq) + 1) FROM events WHERE tenant_id = ?1",
            [TENANT],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(gaps, 0, "the event log has a gap");

    runtime.block_on(async {
        let store = SqliteStore::open(db).unwrap();
        for ack in acked {
            let found = store
                .message(TenantId(TENANT), MessageId(ack.message))
                .await
                .unwrap();
            let found =
                found.unwrap_or_else(|| panic!("acknowledged message {} is missing", ack.message));
            assert_eq!(
                (found.conversation_id.0, found.seq),
                (ack.conversation, ack.seq)
            );
        }
    });
}

#[test]
fn acknowledged_messages_survive_sigkill() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("durability.db");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rng = Rng::from_clock();
    eprintln!("kill schedule seed {}", rng.0);
    let mut acked = Vec::new();
    for round in 0..ROUNDS {
        let run = Duration::from_millis(20 + rng.below(280));
        let new = kill_round(&db, run);
        eprintln!(
            "round {round}: killed after {run:?}, {} acknowledged",
            new.len()
        );
        acked.extend(new);
        check(&db, &acked, &runtime);
    }
    assert!(!acked.is_empty(), "the writer never acknowledged anything");
    eprintln!(
        "{} acknowledged messages survived {ROUNDS} kills in {:?}",
        acked.len(),
        started.elapsed()
    );
}
