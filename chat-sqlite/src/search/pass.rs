//! One pass of the indexer: what the events after the watermark (or the next chunk of a
//! rebuild) ask of the index, read from one snapshot of the database, then applied to the
//! search file in a transaction of its own, unless another indexer got there first.

use std::collections::{BTreeMap, HashSet};

use foldhash::HashMap;

use rusqlite::{OptionalExtension, Transaction, params};

use super::Progress;
use super::indexer::{Indexer, Step};
use super::known::{KnownWords, conversation_number};

/// Events applied per transaction.
pub(super) const EVENT_BATCH: i64 = 5000;
/// Messages copied per transaction of a rebuild.
pub(super) const REBUILD_CHUNK: i64 = 5000;

impl Indexer {
    /// Runs one pass: reads what to change from one snapshot of the database, then applies
    /// it to the search file in a transaction of its own, with the new state. The database
    /// snapshot is let go before the index is written (FTS work is the slow part): a reader
    /// of the database holds back checkpoints while it reads.
    pub(super) fn step(&mut self) -> rusqlite::Result<Step> {
        match self.read_work()? {
            Read::Work(work) => self.apply(work),
            Read::Idle(progress) => Ok(Step::Idle(progress)),
            Read::Diverged => Ok(Step::Diverged),
        }
    }

    /// Applies what [`read_work`](Self::read_work) read, unless the state has moved since.
    pub(super) fn apply(&mut self, work: Work) -> rusqlite::Result<Step> {
        let Work {
            from,
            newest,
            changes,
            to,
        } = work;
        let tx = self.conn.unchecked_transaction()?;
        // Another store's indexer, in this process or another, may follow the same file
        // and have read the same events. The write lock is taken first (a write as the
        // transaction's first statement waits for it, up to the busy timeout), then the
        // state compared with the one the work starts from: the indexer that comes second
        // finds the state moved and drops its work, rather than apply events again from an
        // older reading and take the watermark back. Reading the state first would be as
        // safe but fail instead of wait: SQLite refuses at once to upgrade a read
        // transaction when another connection writes or has written since, which cost a
        // failed pass, a warning and a second's pause.
        tx.prepare_cached("UPDATE search.search_state SET id = id WHERE id = 1")?
            .execute([])?;
        let now = read_state(&tx)?.position();
        self.known.begin(&tx, &now)?;
        if now != from {
            return Ok(Step::Overtaken(now.progress()));
        }
        // A batch's new words, merged per conversation before they are written: a rebuild
        // chunk's messages come in bursts per conversation that share most of their words.
        let mut words = NewWords::default();
        for change in &changes {
            match change {
                Change::Put {
                    pk,
                    conversation,
                    body,
                    flags,
                } => {
                    remove(&tx, *pk)?;
                    add(&tx, *pk, conversation, body, *flags)?;
                    words.add(conversation, body, *flags, &self.known);
                }
                Change::Remove { pk } => remove(&tx, *pk)?,
                Change::RemoveConversation { conversation } => {
                    words.write(&tx, &mut self.known)?;
                    self.known.forget(conversation);
                    remove_conversation(&tx, conversation)?
                }
                Change::Recount {
                    conversation,
                    words: all,
                } => {
                    words.write(&tx, &mut self.known)?;
                    // Words may have left the conversation: what was known of it is not
                    // any more.
                    self.known.forget(conversation);
                    set_words(&tx, conversation, all)?;
                }
            }
        }
        words.write(&tx, &mut self.known)?;
        match &to {
            Position::Rebuilding { rebuilt_to, .. } => tx
                .prepare_cached(
                    "UPDATE search.search_state SET rebuilt_to = ?1, horizon = max(horizon, ?2) \
                     WHERE id = 1",
                )?
                .execute(params![rebuilt_to, newest])?,
            Position::Indexed { watermark, mark } => tx
                .prepare_cached(
                    "UPDATE search.search_state SET watermark = ?1, horizon = max(horizon, ?2), \
                     mark_tenant = ?3, mark_seq = ?4, rebuilt_to = NULL WHERE id = 1",
                )?
                .execute(params![watermark, newest, mark.0, mark.1])?,
        };
        tx.commit()?;
        self.known.committed(&to);
        Ok(Step::Applied(to.progress()))
    }

    /// What the next pass should change, read in one read transaction of both files.
    pub(super) fn read_work(&mut self) -> rusqlite::Result<Read> {
        let tx = self.conn.unchecked_transaction()?;
        let state = read_state(&tx)?;
        let newest: i64 = tx
            .prepare_cached("SELECT coalesce(max(rowid), 0) FROM main.events")?
            .query_row([], |row| row.get(0))?;
        if newest < state.horizon {
            return Ok(Read::Diverged);
        }
        let from = state.position();
        let (changes, to) = match &from {
            Position::Rebuilding {
                watermark,
                mark,
                rebuilt_to,
            } => {
                let (changes, rebuilt_to) = rebuild_chunk(&tx, rebuilt_to.unwrap_or(0))?;
                let to = match rebuilt_to {
                    Some(pk) => Position::Rebuilding {
                        watermark: *watermark,
                        mark: mark.clone(),
                        rebuilt_to: Some(pk),
                    },
                    // Every message copied: the events after the watermark come next.
                    None => Position::Indexed {
                        watermark: *watermark,
                        mark: mark.clone(),
                    },
                };
                (changes, to)
            }
            Position::Indexed { watermark, mark } if newest > *watermark => {
                let (changes, watermark, mark) = event_changes(&tx, *watermark, mark)?;
                (changes, Position::Indexed { watermark, mark })
            }
            Position::Indexed { .. } => return Ok(Read::Idle(from.progress())),
        };
        tx.finish()?;
        Ok(Read::Work(Work {
            from,
            newest,
            changes,
            to,
        }))
    }
}

/// The `search_state` row.
struct State {
    watermark: i64,
    horizon: i64,
    mark: (Option<Vec<u8>>, Option<i64>),
    rebuilt_to: Option<i64>,
}

impl State {
    fn position(&self) -> Position {
        match self.rebuilt_to {
            // `rebuilt_to` 0: nothing copied yet.
            Some(pk) => Position::Rebuilding {
                watermark: self.watermark,
                mark: self.mark.clone(),
                rebuilt_to: (pk > 0).then_some(pk),
            },
            None => Position::Indexed {
                watermark: self.watermark,
                mark: self.mark.clone(),
            },
        }
    }
}

fn read_state(tx: &Transaction<'_>) -> rusqlite::Result<State> {
    tx.prepare_cached(
        "SELECT watermark, horizon, mark_tenant, mark_seq, rebuilt_to FROM search.search_state \
         WHERE id = 1",
    )?
    .query_row([], |row| {
        Ok(State {
            watermark: row.get(0)?,
            horizon: row.get(1)?,
            mark: (row.get(2)?, row.get(3)?),
            rebuilt_to: row.get(4)?,
        })
    })
}

/// Where the index is: copying messages (up to `rebuilt_to`, due to replay the events
/// after `watermark` next), or applying events (up to `watermark`). `mark` is the
/// `(tenant, seq)` of the event at the watermark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Position {
    Rebuilding {
        watermark: i64,
        mark: (Option<Vec<u8>>, Option<i64>),
        rebuilt_to: Option<i64>,
    },
    Indexed {
        watermark: i64,
        mark: (Option<Vec<u8>>, Option<i64>),
    },
}

impl Position {
    fn progress(&self) -> Progress {
        match self {
            Position::Rebuilding { watermark, .. } => Progress::at(false, *watermark),
            Position::Indexed { watermark, .. } => Progress::at(true, *watermark),
        }
    }
}

/// One change to the index, in the order the log had them.
enum Change {
    /// The message at `pk` now reads `body` (whatever was indexed at `pk` goes).
    Put {
        pk: i64,
        conversation: Vec<u8>,
        body: String,
        /// [`flags`](super::flags) of the message.
        flags: i64,
    },
    /// The message at `pk` is deleted.
    Remove { pk: i64 },
    /// The conversation and its messages are gone.
    RemoveConversation { conversation: Vec<u8> },
    /// A message of the conversation was edited or deleted: its words are these (each with
    /// its [`word_kinds`](super::word_kinds)), read from every body it has in the pass's
    /// snapshot. Words are only ever added otherwise, since a word an edit removed may
    /// still be in another message.
    Recount {
        conversation: Vec<u8>,
        words: BTreeMap<String, i64>,
    },
}

/// A pass's reading: the changes, and the position they take the index from and to.
pub(super) struct Work {
    from: Position,
    /// The newest event of the snapshot the changes were read from: the new horizon.
    newest: i64,
    changes: Vec<Change>,
    to: Position,
}

pub(super) enum Read {
    Work(Work),
    /// Nothing to apply; the index is here.
    Idle(Progress),
    /// The database has fewer events than the index has seen.
    Diverged,
}

/// The next [`REBUILD_CHUNK`] messages after `pk`, and the last `pk` read (`None` once
/// every message has been read).
fn rebuild_chunk(tx: &Transaction<'_>, after: i64) -> rusqlite::Result<(Vec<Change>, Option<i64>)> {
    let mut stmt = tx.prepare_cached(
        "SELECT pk, conversation_id, body, kind FROM main.messages \
         WHERE pk > ?1 AND deleted_at IS NULL ORDER BY pk LIMIT +?2",
    )?;
    let mut found = stmt.query(params![after, REBUILD_CHUNK])?;
    let mut changes = Vec::new();
    let mut last = None;
    while let Some(row) = found.next()? {
        let pk = row.get(0)?;
        last = Some(pk);
        let body: String = row.get(2)?;
        changes.push(Change::Put {
            pk,
            conversation: row.get(1)?,
            flags: super::flags::of(row.get_ref(3)?.as_str()?, &body),
            body,
        });
    }
    let more = changes.len() as i64 == REBUILD_CHUNK;
    Ok((changes, if more { last } else { None }))
}

/// A message row as the indexer reads it: `pk`, conversation, body, deleted, and its
/// [`flags`](super::flags).
type Found = (i64, Vec<u8>, String, bool, i64);

/// The changes the events after `watermark` (up to [`EVENT_BATCH`]) ask for, with the
/// rowid and `(tenant, seq)` of the last of them.
#[allow(clippy::type_complexity)]
fn event_changes(
    tx: &Transaction<'_>,
    watermark: i64,
    mark: &(Option<Vec<u8>>, Option<i64>),
) -> rusqlite::Result<(Vec<Change>, i64, (Option<Vec<u8>>, Option<i64>))> {
    struct Row {
        rowid: i64,
        tenant: Vec<u8>,
        seq: i64,
        conversation: Option<Vec<u8>>,
        kind: Option<String>,
        message: Option<String>,
        /// A slim `message_created` event's message row (src/events.rs), read in the same
        /// statement: `None` for a full event, `Some(None)` for a row that is gone.
        slim: Option<Option<Found>>,
    }
    let mut rows = Vec::new();
    {
        // Only the payload's type and message id are needed; SQLite parses the JSON once
        // per row for both. A slim event is a `message_created` naming its row, which is
        // joined here: a statement per message (taken from the cache, bound, stepped and
        // reset) cost about 5,000 instructions of each posted message (`post_cost`).
        let mut stmt = tx.prepare_cached(
            "SELECT e.rowid, e.tenant_id, e.seq, e.conversation_id, \
             iif(e.message_pk IS NULL, e.data ->> '$.payload.type', 'message_created'), \
             e.data ->> '$.payload.message.id', e.message_pk, \
             m.pk, m.conversation_id, m.body, m.deleted_at IS NOT NULL, m.kind \
             FROM main.events e LEFT JOIN main.messages m ON m.pk = e.message_pk \
             WHERE e.rowid > ?1 ORDER BY e.rowid LIMIT +?2",
        )?;
        let mut found = stmt.query(params![watermark, EVENT_BATCH])?;
        while let Some(row) = found.next()? {
            let message_pk: Option<i64> = row.get(6)?;
            let slim = match (message_pk, row.get_ref(7)?.as_i64_or_null()?) {
                (None, _) => None,
                (Some(_), None) => Some(None),
                (Some(_), Some(pk)) => {
                    let body: String = row.get(9)?;
                    let flags = super::flags::of(row.get_ref(11)?.as_str()?, &body);
                    Some(Some((pk, row.get(8)?, body, row.get(10)?, flags)))
                }
            };
            rows.push(Row {
                rowid: row.get(0)?,
                tenant: row.get(1)?,
                seq: row.get(2)?,
                conversation: row.get(3)?,
                kind: row.get(4)?,
                message: row.get(5)?,
                slim,
            });
        }
    }
    // Each message is read as it is in this snapshot, so one read per message is enough
    // however many events it has in the batch.
    let mut done: HashSet<i64> = HashSet::new();
    let mut changes = Vec::new();
    let mut message = tx.prepare_cached(
        "SELECT pk, conversation_id, body, deleted_at IS NOT NULL, kind FROM main.messages WHERE id = ?1",
    )?;
    let mut recounted: HashSet<Vec<u8>> = HashSet::new();
    for row in &mut rows {
        match row.kind.as_deref() {
            Some("message_created" | "message_updated") => {
                let read = |r: &rusqlite::Row<'_>| {
                    let body: String = r.get(2)?;
                    let flags = super::flags::of(r.get_ref(4)?.as_str()?, &body);
                    Ok((r.get(0)?, r.get(1)?, body, r.get(3)?, flags))
                };
                let found: Option<Found> = match row.slim.take() {
                    Some(joined) => joined,
                    None => {
                        let Some(id) = row
                            .message
                            .as_deref()
                            .and_then(|id| id.parse::<uuid::Uuid>().ok())
                        else {
                            continue;
                        };
                        message.query_row([id], read).optional()?
                    }
                };
                if found.as_ref().is_some_and(|f| !done.insert(f.0)) {
                    continue;
                }
                // Gone: its conversation was deleted later in the log, and that event
                // removes its entry.
                let edited = row.kind.as_deref() == Some("message_updated");
                let conversation = found.as_ref().map(|f| f.1.clone());
                match found {
                    Some((pk, conversation, body, false, flags)) => changes.push(Change::Put {
                        pk,
                        conversation,
                        body,
                        flags,
                    }),
                    Some((pk, _, _, true, _)) => changes.push(Change::Remove { pk }),
                    None => {}
                }
                if let Some(conversation) = conversation
                    && edited
                    && recounted.insert(conversation.clone())
                {
                    let words = conversation_words(tx, &conversation)?;
                    changes.push(Change::Recount {
                        conversation,
                        words,
                    });
                }
            }
            Some("conversation_deleted") => {
                if let Some(conversation) = &row.conversation {
                    changes.push(Change::RemoveConversation {
                        conversation: conversation.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(match rows.last() {
        Some(last) => (
            changes,
            last.rowid,
            (Some(last.tenant.clone()), Some(last.seq)),
        ),
        None => (changes, watermark, mark.clone()),
    })
}

/// Every word of the conversation's bodies in this snapshot, with the kinds of message it
/// is in (an edit or a deletion: see [`Change::Recount`]).
fn conversation_words(
    tx: &Transaction<'_>,
    conversation: &[u8],
) -> rusqlite::Result<BTreeMap<String, i64>> {
    let mut stmt = tx.prepare_cached(
        "SELECT body, kind FROM main.messages WHERE conversation_id = ?1 AND deleted_at IS NULL",
    )?;
    let mut rows = stmt.query([conversation])?;
    let mut words = BTreeMap::new();
    while let Some(row) = rows.next()? {
        let kind = super::word_kinds::of(row.get_ref(1)?.as_str()?);
        for word in chat_core::store::text_words(row.get_ref(0)?.as_str()?) {
            *words.entry(word).or_insert(0) |= kind;
        }
    }
    Ok(words)
}

/// Words to add to `conversation_words`, per conversation (foldhash maps: a lookup per word
/// of every message; see `known.rs`).
#[derive(Default)]
struct NewWords(HashMap<Vec<u8>, HashMap<String, i64>>);

impl NewWords {
    /// Gathers the body's words that `known` does not say the file has already (most of
    /// them, in a conversation under way: those cost neither a `String` nor an entry).
    fn add(&mut self, conversation: &[u8], body: &str, flags: i64, known: &KnownWords) {
        let kind = if flags & super::flags::NOTE != 0 {
            super::word_kinds::NOTE
        } else {
            super::word_kinds::MESSAGE
        };
        let words = match self.0.get_mut(conversation) {
            Some(words) => words,
            None => self.0.entry(conversation.to_vec()).or_default(),
        };
        let had = known.words_of(conversation);
        chat_core::store::each_text_word(body, |word| {
            if had
                .and_then(|had| had.get(word))
                .is_some_and(|kinds| kinds & kind == kind)
            {
                return;
            }
            match words.get_mut(word) {
                Some(kinds) => *kinds |= kind,
                None => {
                    words.insert(word.to_owned(), kind);
                }
            }
        });
    }

    /// Writes the words gathered so far (a word already there gains the new kinds), but
    /// for those `known` says the file has with those kinds already: in a conversation
    /// most words of a new message are.
    fn write(&mut self, tx: &Transaction<'_>, known: &mut KnownWords) -> rusqlite::Result<()> {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO search.conversation_words (conversation, word, kinds) VALUES (?1, ?2, ?3) \
             ON CONFLICT (conversation, word) DO UPDATE SET kinds = kinds | excluded.kinds \
             WHERE kinds & excluded.kinds <> excluded.kinds",
        )?;
        for (conversation, words) in self.0.drain() {
            let n = known.number(tx, &conversation)?;
            for (word, kinds) in words {
                if known.has(&conversation, &word, kinds) {
                    continue;
                }
                upsert.execute(params![n, &word, kinds])?;
                known.note(&conversation, n, &word, kinds);
            }
        }
        Ok(())
    }
}

/// Replaces the conversation's words with `words`.
fn set_words(
    tx: &Transaction<'_>,
    conversation: &[u8],
    words: &BTreeMap<String, i64>,
) -> rusqlite::Result<()> {
    let n = conversation_number(tx, conversation)?;
    tx.prepare_cached("DELETE FROM search.conversation_words WHERE conversation = ?1")?
        .execute([n])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO search.conversation_words (conversation, word, kinds) VALUES (?1, ?2, ?3)",
    )?;
    for (word, kinds) in words {
        insert.execute(params![n, word, kinds])?;
    }
    Ok(())
}

fn remove(tx: &Transaction<'_>, pk: i64) -> rusqlite::Result<()> {
    let was_indexed = tx
        .prepare_cached("DELETE FROM search.search_rows WHERE pk = ?1")?
        .execute([pk])?
        > 0;
    if was_indexed {
        tx.prepare_cached("DELETE FROM search.message_search WHERE rowid = ?1")?
            .execute([pk])?;
    }
    Ok(())
}

fn add(
    tx: &Transaction<'_>,
    pk: i64,
    conversation: &[u8],
    body: &str,
    flags: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO search.message_search (rowid, body) VALUES (?1, ?2)")?
        .execute(params![pk, body])?;
    tx.prepare_cached(
        "INSERT INTO search.search_rows (pk, conversation_id, flags) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![pk, conversation, flags])?;
    Ok(())
}

/// A deleted conversation took its messages along: drops their entries. `search_rows` has
/// no index by conversation (search file format 3), so this scans it: deleting a
/// conversation is rare, and the index cost 28 bytes of every message.
fn remove_conversation(tx: &Transaction<'_>, conversation: &[u8]) -> rusqlite::Result<()> {
    let pks: Vec<i64> = tx
        .prepare_cached("DELETE FROM search.search_rows WHERE conversation_id = ?1 RETURNING pk")?
        .query_map([conversation], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut delete = tx.prepare_cached("DELETE FROM search.message_search WHERE rowid = ?1")?;
    for pk in pks {
        delete.execute([pk])?;
    }
    let n: Option<i64> = tx
        .prepare_cached("DELETE FROM search.search_conversations WHERE id = ?1 RETURNING n")?
        .query_row([conversation], |row| row.get(0))
        .optional()?;
    if let Some(n) = n {
        tx.prepare_cached("DELETE FROM search.conversation_words WHERE conversation = ?1")?
            .execute([n])?;
    }
    Ok(())
}
