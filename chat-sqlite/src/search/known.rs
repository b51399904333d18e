//! What the indexer knows the attached search file holds of each conversation's words
//! (`conversation_words`) and numbers (`search_conversations`), so that a pass writes
//! only the words that are new to a conversation. Without it every message cost an
//! upsert per distinct word, although in a conversation most words of a message are
//! already there (`post_cost`: about a third of the server's instructions went to those
//! upserts; see the chat-server README).
//!
//! # When it is right
//!
//! An entry says "this word is in the file for this conversation, with at least these
//! kinds". Words only leave a conversation by a [`Recount`](super::pass) (an edit or a
//! deletion of one of its messages) or by the conversation's deletion, and the indexer
//! forgets the conversation for both. Everything else that could take words away is
//! another writer of the file, or another file: the knowledge is dropped when the file is
//! attached or detached (replaced, rebuilt, damaged, reopened), when a pass finds that
//! another connection committed to the file since this indexer's last pass
//! (`PRAGMA search.data_version`, read under the file's write lock) or that the state is
//! not the one its last pass left, and when a pass fails (what it noted may not have been
//! committed). A word the knowledge lacks costs only the upsert it always cost; the
//! knowledge is never consulted for what a search finds.
//!
//! # Bounded
//!
//! At most [`MAX_ENTRIES`] entries (a conversation counts [`CONVERSATION_ENTRIES`], each
//! of its words one); words longer than [`MAX_WORD_BYTES`] are never kept (they are
//! written every time). When full, the conversations used longest ago are forgotten until
//! a quarter is free.

// The word maps are looked up once per word of every indexed message: std's SipHash cost
// about half of that (`post_cost`, chat-server's README). foldhash is seeded per process,
// and the maps are bounded (`MAX_ENTRIES`), so words a customer chooses cannot grow them.
use foldhash::{HashMap, HashMapExt};

use rusqlite::{OptionalExtension, Transaction};

use super::pass::Position;

/// Entries kept at most. A word costs at most about 100 bytes (its block of at most
/// [`MAX_WORD_BYTES`] and its slot in its conversation's map), a conversation about 300
/// (its id, its map's slot and its own map's first block), hence
/// [`CONVERSATION_ENTRIES`]: at most about 1.6 MB whatever the mix.
pub(super) const MAX_ENTRIES: usize = 16_384;
/// What a conversation's own entry counts against [`MAX_ENTRIES`].
pub(super) const CONVERSATION_ENTRIES: usize = 3;
/// Longer words are not kept: they are rare, and would make the bound in bytes depend on
/// what customers type.
pub(super) const MAX_WORD_BYTES: usize = 32;

#[derive(Default)]
pub(super) struct KnownWords {
    conversations: HashMap<Vec<u8>, Known>,
    /// Entries held (see [`MAX_ENTRIES`]).
    entries: usize,
    /// Counts uses, for forgetting the conversations used longest ago.
    clock: u64,
    /// The search file's `data_version` as the running pass read it under the file's
    /// write lock; becomes `left` when the pass commits.
    version: Option<i64>,
    /// What the last committed pass left: that `data_version`, and the state it wrote.
    /// `None`: the knowledge is not vouched for (a pass failed or was overtaken since, or
    /// nothing was written yet), and the next pass starts from nothing.
    left: Option<(i64, Position)>,
}

/// One conversation's number in the file and the words known to be there.
struct Known {
    n: i64,
    used: u64,
    words: HashMap<Box<str>, i64>,
}

impl KnownWords {
    /// Forgets everything: the file may not be the one the knowledge is of.
    pub(super) fn clear(&mut self) {
        self.conversations = HashMap::default();
        self.entries = 0;
        self.version = None;
        self.left = None;
    }

    /// At the start of a pass, under the file's write lock, with the state found there:
    /// keeps the knowledge only if nobody but this indexer has committed to the file since
    /// its last pass, and that pass left the state as it is.
    pub(super) fn begin(&mut self, tx: &Transaction<'_>, state: &Position) -> rusqlite::Result<()> {
        let version: i64 = tx
            .prepare_cached("PRAGMA search.data_version")?
            .query_row([], |row| row.get(0))?;
        let same = self
            .left
            .as_ref()
            .is_some_and(|(v, at)| *v == version && at == state);
        if !same {
            self.clear();
        }
        // Until this pass commits, what it notes is not vouched for: if it fails, the next
        // pass finds `left` empty and starts from nothing.
        self.left = None;
        self.version = Some(version);
        Ok(())
    }

    /// The pass that [`begin`](Self::begin) started committed, leaving the state at `to`.
    pub(super) fn committed(&mut self, to: &Position) {
        self.left = self.version.take().map(|v| (v, to.clone()));
    }

    /// The conversation's number in `conversation_words` (given to it the first time it
    /// has words).
    pub(super) fn number(
        &mut self,
        tx: &Transaction<'_>,
        conversation: &[u8],
    ) -> rusqlite::Result<i64> {
        self.clock += 1;
        if let Some(known) = self.conversations.get_mut(conversation) {
            known.used = self.clock;
            return Ok(known.n);
        }
        let n = conversation_number(tx, conversation)?;
        self.conversations.insert(
            conversation.to_vec(),
            Known {
                n,
                used: self.clock,
                words: HashMap::new(),
            },
        );
        self.entries += CONVERSATION_ENTRIES;
        self.make_room();
        Ok(n)
    }

    /// Whether the file is known to have `word` in the conversation with all of `kinds`.
    pub(super) fn has(&self, conversation: &[u8], word: &str, kinds: i64) -> bool {
        self.conversations
            .get(conversation)
            .and_then(|known| known.words.get(word))
            .is_some_and(|had| had & kinds == kinds)
    }

    /// What is known of the conversation's words, for a message's words in a row.
    pub(super) fn words_of(&self, conversation: &[u8]) -> Option<&HashMap<Box<str>, i64>> {
        self.conversations
            .get(conversation)
            .map(|known| &known.words)
    }

    /// The pass wrote `word` with `kinds` to the conversation numbered `n`.
    pub(super) fn note(&mut self, conversation: &[u8], n: i64, word: &str, kinds: i64) {
        if word.len() > MAX_WORD_BYTES {
            return;
        }
        let known = match self.conversations.get_mut(conversation) {
            Some(known) => known,
            // Forgotten to make room since its number was looked up.
            None => {
                self.entries += CONVERSATION_ENTRIES;
                self.conversations
                    .entry(conversation.to_vec())
                    .or_insert(Known {
                        n,
                        used: self.clock,
                        words: HashMap::new(),
                    })
            }
        };
        match known.words.get_mut(word) {
            Some(had) => *had |= kinds,
            None => {
                known.words.insert(word.into(), kinds);
                self.entries += 1;
                self.make_room();
            }
        }
    }

    /// The conversation's words changed other than by addition (a recount), or it is
    /// gone (its number too).
    pub(super) fn forget(&mut self, conversation: &[u8]) {
        if let Some(known) = self.conversations.remove(conversation) {
            self.entries -= CONVERSATION_ENTRIES + known.words.len();
        }
    }

    /// Entries held, for the tests of the bound.
    #[cfg(test)]
    pub(super) fn entries(&self) -> usize {
        self.entries
    }

    /// Past [`MAX_ENTRIES`], forgets the conversations used longest ago until a quarter
    /// is free (a sort per that many new entries).
    fn make_room(&mut self) {
        if self.entries <= MAX_ENTRIES {
            return;
        }
        let mut by_use: Vec<(u64, Vec<u8>)> = self
            .conversations
            .iter()
            .map(|(id, known)| (known.used, id.clone()))
            .collect();
        by_use.sort_unstable();
        for (_, id) in by_use {
            if self.entries <= MAX_ENTRIES / 4 * 3 {
                break;
            }
            self.forget(&id);
        }
    }
}

/// The conversation's number in `conversation_words` (a 16-byte id in each of its rows
/// would be most of the table), given to it the first time it has words.
pub(super) fn conversation_number(
    tx: &Transaction<'_>,
    conversation: &[u8],
) -> rusqlite::Result<i64> {
    let known = tx
        .prepare_cached("SELECT n FROM search.search_conversations WHERE id = ?1")?
        .query_row([conversation], |row| row.get(0))
        .optional()?;
    if let Some(n) = known {
        return Ok(n);
    }
    tx.prepare_cached("INSERT INTO search.search_conversations (id) VALUES (?1)")?
        .execute([conversation])?;
    Ok(tx.last_insert_rowid())
}
