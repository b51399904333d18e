//! A customer is answered exactly once, whatever the crash (issue 23, item 4): a server
//! with a bot is killed with SIGKILL while the bot thinks about visitors' messages that
//! are already stored, again and again; after every restart each of those messages gets
//! exactly one answer from the bot, and nothing answered before is answered again.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chat_core::bot_reply_key;
use chat_core::store::{ConversationQuery, MessageQuery, Scope};
use chat_core::{Message, MessageId, MessageKind, Mode, Sender, Store, TenantId};
use chat_sqlite::SqliteStore;
use uuid::Uuid;

const ROUNDS: usize = 15;
/// Conversations opened per round (every third asks for a human).
const NEW: usize = 3;
/// Follow-ups per round in conversations still with the bot.
const FOLLOW_UPS: usize = 2;
const TENANT: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0023);
/// How long one line of the server may take on a loaded machine before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);

struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts the server; the visitors of `retry` retry those messages at once.
    fn start(db: &std::path::Path, new: usize, follow_ups: usize, retry: &[MessageId]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bot_turn_server"))
            .arg(db)
            .arg(new.to_string())
            .arg(follow_ups.to_string())
            .args(retry.iter().map(ToString::to_string))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the server");
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Server { child, lines }
    }

    /// The number after `word` on the server's next line.
    fn next(&self, word: &str) -> String {
        let line = self
            .lines
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|e| panic!("waiting for `{word}`: {e}"));
        line.strip_prefix(word)
            .and_then(|rest| rest.strip_prefix(' '))
            .unwrap_or_else(|| panic!("expected `{word} …`, got `{line}`"))
            .to_owned()
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().unwrap();
    }
}

/// What the database says: every customer message with the bot messages answering it.
struct Desk {
    /// Customer message → the bot messages keyed as its answer.
    answers: BTreeMap<MessageId, Vec<Message>>,
    /// Customer message → bot messages between it and the conversation's next customer
    /// message (whatever their key: a double answer without a key shows here).
    bot_after: BTreeMap<MessageId, usize>,
    /// Conversations in `queued` mode → their "Waiting for an agent" notices.
    queued: Vec<usize>,
    /// Customer messages posted with a `client_message_id`, which a client can retry.
    retryable: BTreeSet<MessageId>,
}

fn read_desk(db: &std::path::Path, runtime: &tokio::runtime::Runtime) -> Desk {
    runtime.block_on(async {
        let store = SqliteStore::open(db).unwrap();
        let tenant = TenantId(TENANT);
        let mut query = ConversationQuery::new(tenant, Scope::Tenant);
        query.limit = 1000;
        let page = store.list_conversations(&query).await.unwrap();
        assert!(
            page.next_cursor.is_none(),
            "one page holds every conversation"
        );
        let mut desk = Desk {
            answers: BTreeMap::new(),
            bot_after: BTreeMap::new(),
            queued: Vec::new(),
            retryable: BTreeSet::new(),
        };
        for c in page.items {
            let history = store
                .messages(&MessageQuery::latest(tenant, c.id, 10_000))
                .await
                .unwrap();
            assert_eq!(history.len() as u64, c.last_seq, "the whole history read");
            let mut current = None;
            for m in &history {
                match m.sender {
                    Sender::Customer => {
                        if m.client_message_id.is_some() {
                            desk.retryable.insert(m.id);
                        }
                        desk.answers.insert(m.id, Vec::new());
                        desk.bot_after.insert(m.id, 0);
                        current = Some(m.id);
                    }
                    Sender::Bot => {
                        let current = current.expect("the bot speaks after the customer");
                        *desk.bot_after.get_mut(&current).unwrap() += 1;
                    }
                    _ => {}
                }
            }
            for m in &history {
                if m.sender != Sender::Bot {
                    continue;
                }
                let key = m.client_message_id.as_deref().unwrap_or_default();
                let answered = desk
                    .answers
                    .iter_mut()
                    .find(|(id, _)| bot_reply_key(**id) == key);
                answered
                    .unwrap_or_else(|| panic!("a bot message answering nothing: {m:?}"))
                    .1
                    .push(m.clone());
            }
            if c.mode == Mode::Queued {
                desk.queued.push(
                    history
                        .iter()
                        .filter(|m| {
                            m.kind == MessageKind::Event
                                && m.body.starts_with("Waiting for an agent")
                        })
                        .count(),
                );
            }
        }
        desk
    })
}

/// Every customer message is answered exactly once, except `thinking` (not at all).
fn check(desk: &Desk, thinking: &BTreeSet<MessageId>, round: usize) {
    for (question, answers) in &desk.answers {
        let expected = usize::from(!thinking.contains(question));
        assert_eq!(
            (answers.len(), desk.bot_after[question]),
            (expected, expected),
            "round {round}: customer message {question} has {} keyed bot answers and {} bot \
             messages after it (expected {expected})",
            answers.len(),
            desk.bot_after[question],
        );
    }
    for (n, notices) in desk.queued.iter().enumerate() {
        assert_eq!(
            *notices, 1,
            "round {round}: queued conversation {n} queued once"
        );
    }
}

#[test]
fn every_stored_question_is_answered_once_across_sigkills() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot-turns.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut thinking = BTreeSet::new();
    let mut retryable = BTreeSet::new();
    let (mut resumed_total, mut retried_total, mut cut_short) = (0, 0, 0);
    for round in 0..=ROUNDS {
        // Every other restart, the clients whose follow-ups were cut short retry them
        // while the resume runs: both may take the same turn, and it still answers once.
        let retry: Vec<MessageId> = if round % 2 == 0 {
            Vec::new()
        } else {
            thinking.intersection(&retryable).copied().collect()
        };
        // The last restart has nobody writing: it answers the last kill's and exits.
        let last = round == ROUNDS;
        let server = if last {
            Server::start(&db, 0, 0, &retry)
        } else {
            Server::start(&db, NEW, FOLLOW_UPS, &retry)
        };
        let mut retried = BTreeMap::new();
        for _ in &retry {
            let line = server.next("retried");
            let mut words = line.split(' ');
            let asked = MessageId(words.next().unwrap().parse().unwrap());
            assert_eq!(
                words.next(),
                Some("false"),
                "round {round}: {line}: stored before"
            );
            let replies: Vec<_> = words.map(|w| MessageId(w.parse().unwrap())).collect();
            assert_eq!(
                replies.len(),
                1,
                "round {round}: the retry brings one answer"
            );
            retried.insert(asked, replies[0]);
        }
        assert_eq!(
            retried.keys().copied().collect::<Vec<_>>(),
            retry,
            "each retry answered"
        );
        let resumed: usize = server.next("resumed").parse().unwrap();
        assert!(
            resumed <= thinking.len() && resumed + retry.len() >= thinking.len(),
            "round {round}: the restart answers what the kill left: {resumed} resumed, {} \
             retried, {} left",
            retry.len(),
            thinking.len()
        );
        resumed_total += resumed;
        retried_total += retry.len();
        let posting: usize = server.next("posting").parse().unwrap();
        let previous = std::mem::take(&mut thinking);
        if last {
            assert_eq!(posting, 0);
            let mut child = server.child;
            assert!(child.wait().unwrap().success());
        } else {
            assert!(posting >= NEW);
            cut_short += posting;
            thinking = (0..posting)
                .map(|_| MessageId(server.next("thinking").parse().unwrap()))
                .collect();
            // The bot thinks about each only once it is stored: the kill lands in between.
            server.kill();
        }
        let desk = read_desk(&db, &runtime);
        for question in &thinking {
            assert!(desk.answers.contains_key(question), "{question} is stored");
        }
        check(&desk, &thinking, round);
        for question in &previous {
            assert_eq!(
                desk.answers[question].len(),
                1,
                "{question} answered after the kill"
            );
        }
        for (question, reply) in &retried {
            assert_eq!(
                desk.answers[question][0].id, *reply,
                "round {round}: the retry returned the answer stored"
            );
        }
        retryable = desk.retryable.clone();
        eprintln!(
            "round {round}: {resumed} answered by the resume, {} by retries, killed while the \
             bot thought about {posting}",
            retry.len()
        );
        if last {
            assert!(
                !desk.queued.is_empty(),
                "some visitors were handed to a human"
            );
            assert!(retried_total > 0, "some answers came through a retry");
            eprintln!(
                "{} customer messages, {} cut short by a SIGKILL ({resumed_total} resumed, \
                 {retried_total} retried), each answered once, {} conversations handed off, \
                 in {:?}",
                desk.answers.len(),
                cut_short,
                desk.queued.len(),
                started.elapsed()
            );
        }
    }
}
