//! The word index of message bodies: lexemes for the `words` tsvector and the tsquery that
//! narrows a text search, both made here in Rust.
//!
//! The text filter means chat-core's `contains_ci` (a case-insensitive substring), which no
//! PostgreSQL operator states exactly, so the index only narrows and the lower-cased body
//! decides. For the narrowing to never lose a match, the words are cut by the same code on
//! both sides: runs of ASCII letters and digits of the text lower-cased by Rust. The
//! lexemes go into the tsvector verbatim (`array_to_tsvector`), bypassing PostgreSQL's
//! parser, whose idea of a word (e-mails, URLs, hyphenated words) and of a letter (the
//! database's locale) would disagree.
//!
//! Search is therefore case-insensitive as the SQLite store is, and, like it, not
//! accent-insensitive: `unaccent` would find "cafe" in "café" here and nowhere else, so
//! results would depend on the backend.

use std::collections::BTreeSet;

/// Longest lexeme kept; longer runs (hashes, encoded blobs) are cut, and the needle's words
/// are cut the same way and looked up as prefixes.
const MAX_WORD: usize = 64;

/// The runs of ASCII letters and digits of `lowered`, with their byte ranges.
fn runs(lowered: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let bytes = lowered.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() && !bytes[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if i >= bytes.len() {
            return None;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
            i += 1;
        }
        Some((start, i))
    })
}

/// The lexemes of a message body already lower-cased with `str::to_lowercase`.
pub(crate) fn lexemes(lowered: &str) -> Vec<String> {
    let words: BTreeSet<&str> = runs(lowered)
        .map(|(s, e)| &lowered[s..e.min(s + MAX_WORD)])
        .collect();
    words.into_iter().map(str::to_owned).collect()
}

/// The tsquery that finds every message whose lower-cased body contains `needle_lc` (and
/// some that do not), or `None` when no part of the needle can be looked up.
///
/// A word of the needle can be looked up only if the needle shows where it starts (the
/// character before it is ASCII and not a letter or digit); otherwise it may be the inside
/// of a longer word ("efun" in "refund"). If the needle also shows where it ends, the word
/// is a whole lexeme; if not, it may start a longer one: a prefix query.
pub(crate) fn tsquery(needle_lc: &str) -> Option<String> {
    let bytes = needle_lc.as_bytes();
    let separator = |i: usize| {
        bytes
            .get(i)
            .is_some_and(|b| b.is_ascii() && !b.is_ascii_alphanumeric())
    };
    let terms: Vec<String> = runs(needle_lc)
        .filter(|&(start, _)| start > 0 && separator(start - 1))
        .map(|(start, end)| {
            let cut = end - start > MAX_WORD;
            let word = &needle_lc[start..end.min(start + MAX_WORD)];
            let prefix = if cut || !separator(end) { ":*" } else { "" };
            // Only ASCII letters and digits: nothing to escape inside the quotes.
            format!("'{word}'{prefix}")
        })
        .collect();
    (!terms.is_empty()).then(|| terms.join(" & "))
}

#[cfg(test)]
mod tests {
    use super::{lexemes, tsquery};

    #[test]
    fn only_words_whose_start_the_needle_shows_are_looked_up() {
        assert_eq!(tsquery("zipper"), None);
        assert_eq!(tsquery("efun"), None);
        assert_eq!(tsquery("max@shop"), Some("'shop':*".into()));
        assert_eq!(
            tsquery("vip customer, refund"),
            Some("'customer' & 'refund':*".into())
        );
        assert_eq!(tsquery(" order 12"), Some("'order' & '12':*".into()));
        assert_eq!(tsquery(" café "), Some("'caf':*".into()));
    }

    #[test]
    fn lexemes_are_the_ascii_words_of_the_lowered_body_once_each() {
        assert_eq!(
            lexemes("my parcel, my order #12 (café)"),
            vec!["12", "caf", "my", "order", "parcel"]
        );
        assert!(lexemes("¿¡ ... !?").is_empty());
        let long = "a".repeat(100);
        assert_eq!(lexemes(&long), vec!["a".repeat(64)]);
    }
}
