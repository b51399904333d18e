//! White-box tests of the indexer and the readers (the black-box ones are in
//! `tests/search*.rs`).

use std::collections::BTreeMap;

use chat_core::store::{ConversationQuery, Scope};
use chat_core::{
    Contact, ContactId, Conversation, ConversationId, MessageId, MessageKind, Mode, NewMessage,
    Sender, Store, Tenant, TenantId, TenantSettings,
};
use rusqlite::Connection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::indexer::Indexer;
use super::indexer::Step;
use super::pass::Read;
use super::{Progress, Shared, WordIndex, search_path, word_index};
use crate::{Options, SqliteStore, list};

/// A reader connection as the pool makes them (`query_only`) moves to a new search
/// file when the indexer has replaced the one it attached.
#[test]
fn readers_follow_a_replaced_search_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let store = SqliteStore::open(&path).unwrap();
    let shared = store.search.shared();
    let reader = Connection::open(&path).unwrap();
    crate::connection::configure(&reader, &Options::default()).unwrap();
    shared.attach_reader(&reader);
    reader.execute_batch("PRAGMA query_only = ON").unwrap();
    let attached = |conn: &Connection| -> i64 {
        conn.query_row("SELECT file_id FROM search.search_state", [], |r| r.get(0))
            .unwrap()
    };
    let first = attached(&reader);
    assert_eq!(
        first,
        shared.file_id.load(std::sync::atomic::Ordering::Acquire)
    );

    // What the indexer does with a damaged file, done here by hand: the file deleted with
    // its log and shared memory (as `file.rs` deletes it), a new file under the same
    // name, with a new id. (Deleting only the file left the old `-shm` to the new file,
    // which the reader still maps: it then read the new file's log.)
    drop(store);
    let file = search_path(&path);
    for suffix in ["", "-wal", "-shm"] {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("{}: {e}", std::path::Path::new(&name).display()),
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    let shared = store.search.shared();
    let second = shared.file_id.load(std::sync::atomic::Ordering::Acquire);
    assert_ne!(second, first);
    assert_eq!(attached(&reader), first, "still on the old file");
    shared.attach_reader(&reader);
    assert_eq!(attached(&reader), second);
}

/// A tenant, a contact and a conversation of theirs.
async fn conversation(store: &SqliteStore) -> Conversation {
    conversation_numbered(store, 3).await
}

/// The conversation with id `n` of the tenant and contact of [`conversation`] (made first
/// if they are not there yet).
async fn conversation_numbered(store: &SqliteStore, n: u128) -> Conversation {
    let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
    let tenant = TenantId(Uuid::from_u128(1));
    // Taken if there already.
    let _ = store
        .insert_tenant(&Tenant {
            id: tenant,
            name: "T".into(),
            settings: TenantSettings::default(),
            settings_version: 0,
            created_at: now,
        })
        .await;
    let contact = ContactId(Uuid::from_u128(2));
    let _ = store
        .insert_contact(&Contact {
            id: contact,
            tenant_id: tenant,
            name: None,
            email: None,
            email_verified: false,
            phone: None,
            address: None,
            external_id: None,
            metadata: BTreeMap::new(),
            created_at: now,
            updated_at: now,
        })
        .await;
    let c = Conversation::new(
        ConversationId(Uuid::from_u128(n)),
        tenant,
        contact,
        Mode::Bot,
        now,
    );
    store.create_conversation(&c, vec![]).await.unwrap();
    c
}

async fn post(store: &SqliteStore, c: &Conversation, n: u128, body: &str) -> chat_core::Message {
    store
        .append_message(NewMessage {
            id: MessageId(Uuid::from_u128(n)),
            tenant_id: c.tenant_id,
            conversation_id: c.id,
            sender: Sender::Customer,
            kind: MessageKind::Text,
            body: body.into(),
            attachments: Vec::new(),
            reply_to: None,
            client_message_id: None,
            entities: Vec::new(),
            metadata: BTreeMap::new(),
            created_at: c.created_at,
        })
        .await
        .unwrap()
        .message
}

/// A store whose own indexer has caught up with an empty log and stopped, so that
/// what the test runs is the only indexing.
async fn store_without_indexer() -> (tempfile::TempDir, std::path::PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let mut store = SqliteStore::open(&path).unwrap();
    store.wait_for_search_index().await.unwrap();
    stop_indexer(&mut store);
    (dir, path, store)
}

/// Stops and joins the store's indexer thread, as dropping the store does.
fn stop_indexer(store: &mut SqliteStore) {
    store.search.shared.lock().stop = true;
    store.search.shared.cond.notify_all();
    store.search.thread.take().unwrap().join().unwrap();
}

fn newest_event(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("SELECT max(rowid) FROM events", [], |r| r.get(0))
        .unwrap()
}

/// A wait on an indexer thread that has stopped fails, naming the search file, rather
/// than waiting for progress that cannot come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_on_a_stopped_indexer_fails() {
    let (_dir, path, store) = store_without_indexer().await;
    // Events the stopped indexer will never apply.
    conversation(&store).await;

    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        store.wait_for_search_index(),
    )
    .await
    .expect("the wait hung on a stopped indexer");
    let Err(chat_core::Error::Storage(failure)) = outcome else {
        panic!("expected Error::Storage, got {outcome:?}");
    };
    let message = failure.message();
    let file = search_path(&path).display().to_string();
    assert!(
        message.contains(&file) && message.contains("stopped"),
        "{message}"
    );
}

/// Two indexers on one search file (two stores, or two processes) that have read the
/// same events: the one that applies second finds the state moved and drops its work,
/// instead of applying its older reading again and taking the watermark back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indexer_overtaken_by_another_drops_its_work() {
    let (_dir, path, store) = store_without_indexer().await;
    // Only the two indexers below write the file.
    let c = conversation(&store).await;
    post(&store, &c, 10, "alpha").await;
    let options = Options::default();
    let (first, second) = (Shared::new(None, 0), Shared::new(None, 0));
    let mut a = Indexer::new(&path, &options).unwrap();
    let mut b = Indexer::new(&path, &options).unwrap();
    a.open_file(&first).unwrap();
    b.open_file(&second).unwrap();
    while !matches!(a.step().unwrap(), Step::Idle(_)) {}

    post(&store, &c, 11, "bravo").await;
    let Read::Work(stale) = b.read_work().unwrap() else {
        panic!("b found nothing to do");
    };
    post(&store, &c, 12, "charlie").await;
    let newest = newest_event(&path);
    let Step::Applied(applied) = a.step().unwrap() else {
        panic!("a applied nothing");
    };
    assert_eq!(applied.watermark, newest);

    match b.apply(stale).unwrap() {
        Step::Overtaken(found) => assert_eq!(found.watermark, newest),
        _ => panic!("the stale work was applied"),
    }
    assert_eq!(b.progress().unwrap(), Progress::at(true, newest));
    let indexed: i64 = a
        .conn
        .query_row("SELECT count(*) FROM search.search_rows", [], |r| r.get(0))
        .unwrap();
    assert_eq!(indexed, 3);
}

/// An indexer that finds another connection writing the search file (with two stores
/// on one file, the other's indexer often is) waits for it, up to the busy timeout,
/// and then applies its work, rather than failing the pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indexer_waits_for_another_writer_of_the_search_file() {
    let (_dir, path, store) = store_without_indexer().await;
    let c = conversation(&store).await;
    post(&store, &c, 10, "alpha").await;
    let mut a = Indexer::new(&path, &Options::default()).unwrap();
    a.open_file(&Shared::new(None, 0)).unwrap();
    let Read::Work(work) = a.read_work().unwrap() else {
        panic!("nothing to do");
    };

    let holder = Connection::open(search_path(&path)).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let hold = std::time::Duration::from_millis(300);
    let release = std::thread::spawn(move || {
        std::thread::sleep(hold);
        holder.execute_batch("COMMIT").unwrap();
    });
    let started = std::time::Instant::now();
    let step = a.apply(work);
    let waited = started.elapsed();
    release.join().unwrap();
    assert!(
        matches!(step, Ok(Step::Applied(_))),
        "the pass did not apply its work: {:?}",
        step.err()
    );
    assert!(
        waited >= hold / 2,
        "applied after {waited:?} without waiting"
    );
    assert_eq!(
        a.progress().unwrap(),
        Progress::at(true, newest_event(&path))
    );
}

/// The edit race: a reader whose database snapshot is older than the index. The
/// index already holds the edited body ("banana") while the reader's snapshot still
/// shows the old one ("apple"), and the conversation has no event after the watermark
/// in that snapshot. Searching through the index would miss the message; the horizon
/// check sends the search to the bodies instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_newer_than_the_database_snapshot_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let store = SqliteStore::open(&path).unwrap();
    let c = conversation(&store).await;
    let (tenant, now) = (c.tenant_id, c.created_at);
    let posted = post(&store, &c, 4, "an apple pie").await;
    store.wait_for_search_index().await.unwrap();

    // A reader as the pool has them, whose database snapshot predates the edit.
    let reader = Connection::open(&path).unwrap();
    crate::connection::configure(&reader, &Options::default()).unwrap();
    reader
        .execute(
            "ATTACH DATABASE ?1 AS search",
            [search_path(&path).to_str().unwrap()],
        )
        .unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM main.messages", [], |r| r.get(0))
        .unwrap();

    let mut edited = posted.clone();
    edited.body = "a banana split".into();
    edited.edited_at = Some(now);
    store.update_message(&edited).await.unwrap();
    store.wait_for_search_index().await.unwrap();

    let q = ConversationQuery {
        text: Some(" apple".into()),
        ..ConversationQuery::new(tenant, Scope::Tenant)
    };
    let index = word_index(&reader);
    assert_eq!(
        index,
        WordIndex::Scan,
        "the index is newer than the snapshot"
    );
    let found = list::list_conversations(&reader, &q, index, 5000).unwrap();
    assert_eq!(found.items.len(), 1, "the snapshot shows \"an apple pie\"");
    // What the index alone would have said.
    let watermark: i64 = reader
        .query_row("SELECT watermark FROM search.search_state", [], |r| {
            r.get(0)
        })
        .unwrap();
    let through_index =
        list::list_conversations(&reader, &q, WordIndex::Since { watermark }, 5000).unwrap();
    assert!(through_index.items.is_empty());
    reader.execute_batch("COMMIT").unwrap();
}

/// A word in more message bodies than `Options::search_candidates` walks the inbox, even
/// when it is in no title and no contact: each index is counted up to one past the limit.
/// (Counted up to the limit, such a word summed to it exactly and was looked up match by
/// match: the growth bench's common word never took the walk.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_word_in_more_bodies_than_the_candidate_limit_walks_the_inbox() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let store = SqliteStore::open(&path).unwrap();
    let c = conversation(&store).await;
    for n in 0..3 {
        post(&store, &c, 10 + n, "where is my parcel").await;
    }
    store.wait_for_search_index().await.unwrap();
    let reader = Connection::open(&path).unwrap();
    crate::connection::configure(&reader, &Options::default()).unwrap();
    reader
        .execute(
            "ATTACH DATABASE ?1 AS search",
            [search_path(&path).to_str().unwrap()],
        )
        .unwrap();
    let index = word_index(&reader);
    assert!(matches!(index, WordIndex::Since { .. }));
    let q = |text: &str| ConversationQuery {
        text: Some(text.into()),
        ..ConversationQuery::new(c.tenant_id, Scope::Tenant)
    };
    for (text, candidates, walks) in [
        ("parcel", 2, true),
        ("parcel", 3, false),
        ("parcel", 0, true),
        ("where parcel", 2, true),
        ("nothing", 0, false),
    ] {
        assert_eq!(
            list::walks(&reader, &q(text), index, candidates).unwrap(),
            walks,
            "{text:?} with {candidates} candidates"
        );
    }
    // The walk and the candidates answer alike.
    let walked = list::list_conversations(&reader, &q("parcel"), index, 0).unwrap();
    let looked_up = list::list_conversations(&reader, &q("parcel"), index, 5000).unwrap();
    assert_eq!(format!("{walked:?}"), format!("{looked_up:?}"));
    assert_eq!(walked.items.len(), 1);
}

/// The kinds `conversation_words` of the attached file holds for `word` in `c`.
fn word_kinds(ix: &Indexer, c: &Conversation, word: &str) -> Option<i64> {
    use rusqlite::OptionalExtension;
    ix.conn
        .query_row(
            "SELECT w.kinds FROM search.conversation_words w \
             JOIN search.search_conversations c ON c.n = w.conversation \
             WHERE c.id = ?1 AND w.word = ?2",
            rusqlite::params![c.id.0, word],
            |r| r.get(0),
        )
        .optional()
        .unwrap()
}

/// Steps the indexer until it has nothing to apply.
fn catch_up(ix: &mut Indexer) {
    loop {
        match ix.step().unwrap() {
            Step::Idle(_) => return,
            Step::Diverged => panic!("diverged"),
            _ => {}
        }
    }
}

/// An indexer does not write again the words it knows a conversation has (see
/// `known.rs`), so it must forget them when another writer of the search file may have
/// taken them away: here another indexer (another store, or process, on the same file)
/// applied an edit that took "alpha" out of the conversation. When "alpha" is posted
/// again, the first indexer writes it: it finds that another connection committed to the
/// file since its last pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_word_another_indexer_took_away_is_written_again() {
    let (_dir, path, store) = store_without_indexer().await;
    let c = conversation(&store).await;
    let posted = post(&store, &c, 10, "alpha bravo").await;
    let options = Options::default();
    let mut a = Indexer::new(&path, &options).unwrap();
    let mut b = Indexer::new(&path, &options).unwrap();
    a.open_file(&Shared::new(None, 0)).unwrap();
    b.open_file(&Shared::new(None, 0)).unwrap();
    catch_up(&mut a);
    assert_eq!(word_kinds(&a, &c, "alpha"), Some(1));

    let mut edited = posted.clone();
    edited.body = "bravo only".into();
    edited.edited_at = Some(c.created_at);
    store.update_message(&edited).await.unwrap();
    catch_up(&mut b);
    assert_eq!(word_kinds(&a, &c, "alpha"), None, "the edit took it away");

    post(&store, &c, 11, "alpha again").await;
    catch_up(&mut a);
    assert_eq!(
        word_kinds(&a, &c, "alpha"),
        Some(1),
        "a skipped a word it knew from before the other indexer's pass"
    );
    assert_eq!(word_kinds(&a, &c, "again"), Some(1));
}

/// A search file replaced under a running indexer (deleted and made again, as another
/// store does with a damaged one) holds none of the words the indexer knew: the rebuild
/// writes every word of every message again, with the new file's conversation numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_search_file_gets_every_word_again() {
    let (_dir, path, store) = store_without_indexer().await;
    let c = conversation(&store).await;
    post(&store, &c, 10, "alpha bravo").await;
    let shared = Shared::new(None, 0);
    let mut a = Indexer::new(&path, &Options::default()).unwrap();
    a.open_file(&shared).unwrap();
    catch_up(&mut a);
    assert_eq!(word_kinds(&a, &c, "alpha"), Some(1));

    let file = search_path(&path);
    for suffix in ["", "-wal", "-shm"] {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(&name);
    }
    // Another conversation, whose words in the new file must not be taken for the first
    // one's (numbers are given anew).
    let other = conversation_numbered(&store, 2).await;
    post(&store, &other, 20, "zulu").await;
    post(&store, &c, 11, "alpha charlie").await;

    // What the indexer thread does when it finds the file moved.
    assert!(a.moved());
    a.detach();
    a.open_file(&shared).unwrap();
    catch_up(&mut a);
    for word in ["alpha", "bravo", "charlie"] {
        assert_eq!(word_kinds(&a, &c, word), Some(1), "{word:?} is missing");
    }
    assert_eq!(word_kinds(&a, &other, "zulu"), Some(1));
    assert_eq!(word_kinds(&a, &other, "alpha"), None);
}

/// What the indexer knows of words stays within its bound however many words come, and
/// a word it forgot to make room is written again, never lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_words_stay_bounded_and_forgetting_loses_no_word() {
    use super::known::{CONVERSATION_ENTRIES, MAX_ENTRIES};
    let (_dir, path, store) = store_without_indexer().await;
    let per_conversation = MAX_ENTRIES / 2;
    let mut conversations = Vec::new();
    for k in 0..3u128 {
        let c = conversation_numbered(&store, 100 + k).await;
        let body: Vec<String> = (0..per_conversation).map(|i| format!("w{k}x{i}")).collect();
        post(&store, &c, 1000 + k, &body.join(" ")).await;
        conversations.push(c);
    }
    let mut a = Indexer::new(&path, &Options::default()).unwrap();
    a.open_file(&Shared::new(None, 0)).unwrap();
    catch_up(&mut a);
    assert!(
        a.known.entries() <= MAX_ENTRIES,
        "{} entries known",
        a.known.entries()
    );
    // The first conversation was forgotten to make room; its words come again, with one
    // new one, and all are there.
    let first = &conversations[0];
    post(&store, first, 2000, "w0x0 w0x1 novel").await;
    catch_up(&mut a);
    assert!(a.known.entries() <= MAX_ENTRIES);
    assert!(a.known.entries() >= CONVERSATION_ENTRIES);
    let words: i64 = a
        .conn
        .query_row("SELECT count(*) FROM search.conversation_words", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(words as usize, 3 * per_conversation + 1);
    assert_eq!(word_kinds(&a, first, "novel"), Some(1));
    assert_eq!(word_kinds(&a, first, "w0x1"), Some(1));
}
