//! The word index: what a searched field (a message body, a title, a contact's name or
//! e-mail) stores, and the tsqueries a search text becomes, both made here in Rust.
//!
//! The text filter means chat-core's [`TextQuery`]: each word of the text starts a word of
//! the field, quoted words follow each other, the last one again a prefix. Words are cut by
//! the same rule as chat-core's (runs of `char::is_alphanumeric`, each lower-cased by
//! `str::to_lowercase`) and go into a `tsvector` verbatim, with their positions, through its
//! text form: PostgreSQL's parser, whose idea of a word (e-mails, URLs, hyphenated words)
//! and of a letter (the database's locale) would disagree, plays no part. A search is then
//! a tsquery of prefix terms (`'ord':*`), a phrase the followed-by operator
//! (`'late' <-> 'parc':*`), all joined by `&`, which PostgreSQL answers exactly as
//! `TextQuery::matches` does.
//!
//! Exactly, but for what a `tsvector` cannot hold: at most 256 positions per lexeme,
//! positions up to 16,383, lexemes shorter than 2 KB. A field beyond them (a word repeated
//! more than 256 times, more than 16,383 words, a word longer than [`MAX_WORD`] bytes) is
//! *lossy*: its `tsvector` holds its words cut to [`MAX_WORD`] bytes without positions, which
//! only narrows, and its word list (`' ' || words joined by ' '`) decides: a phrase is found
//! where `' ' || its words joined by ' '` is (words never hold a space).

use std::collections::BTreeMap;

use chat_core::store::TextQuery;

/// Longest lexeme kept; longer words (hashes, encoded blobs) are cut at a character
/// boundary, and their field is lossy.
pub(crate) const MAX_WORD: usize = 64;

/// Most positions PostgreSQL keeps for one lexeme.
const MAX_POSITIONS: usize = 256;

/// Highest position PostgreSQL keeps (higher ones become this one).
const MAX_POSITION: usize = 16_383;

/// Most nodes (operands and operators) of one tsquery, and most bytes of its operands.
const MAX_QUERY_NODES: usize = 32_000;
const MAX_QUERY_BYTES: usize = 1_000_000;

/// Most terms of the tsquery that finds candidates in the index.
const MAX_INDEX_TERMS: usize = 64;

/// The lower-case words of `text`: chat-core's rule (`TextQuery`) to the letter.
pub(crate) fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// `word` cut to at most [`MAX_WORD`] bytes, at a character boundary.
fn cut(word: &str) -> &str {
    if word.len() <= MAX_WORD {
        return word;
    }
    let mut end = MAX_WORD;
    while !word.is_char_boundary(end) {
        end -= 1;
    }
    &word[..end]
}

/// `word` quoted as a tsvector or tsquery lexeme.
fn quoted(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for c in word.chars() {
        if c == '\'' || c == '\\' {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// What a searched field stores: its `tsvector` (text form) and, when that is lossy, its
/// word list.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Indexed {
    pub(crate) tsvector: String,
    pub(crate) list: Option<String>,
}

impl Indexed {
    /// The columns of a field with no words (absent, empty, a deleted message).
    pub(crate) fn none() -> Self {
        Self {
            tsvector: String::new(),
            list: None,
        }
    }

    /// The columns of the field `text`.
    pub(crate) fn of(text: Option<&str>) -> Self {
        let Some(text) = text else {
            return Self::none();
        };
        let words = words(text);
        let mut positions: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (n, w) in words.iter().enumerate() {
            positions.entry(cut(w)).or_default().push(n + 1);
        }
        let lossy = words.len() > MAX_POSITION
            || words.iter().any(|w| w.len() > MAX_WORD)
            || positions.values().any(|p| p.len() > MAX_POSITIONS);
        let mut tsvector = String::new();
        for (lexeme, at) in &positions {
            if !tsvector.is_empty() {
                tsvector.push(' ');
            }
            tsvector.push_str(&quoted(lexeme));
            if !lossy {
                tsvector.push(':');
                let at: Vec<String> = at.iter().map(usize::to_string).collect();
                tsvector.push_str(&at.join(","));
            }
        }
        let list = lossy.then(|| format!(" {}", words.join(" ")));
        Self { tsvector, list }
    }
}

/// A search text as SQL can test it on a field's columns.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Search {
    /// Finds, through the GIN index, every field that can match (and some that do not).
    pub(crate) index: String,
    /// Decides for a field whose `tsvector` is exact; `None` when none can match (a word
    /// of the text longer than any such field holds, or a phrase longer than it).
    pub(crate) exact: Option<String>,
    /// Decides for a lossy field: each must be found in its word list.
    pub(crate) phrases: Vec<String>,
}

impl Search {
    /// `None` for a text with no word, which matches nothing.
    pub(crate) fn new(query: &TextQuery) -> Option<Self> {
        if query.is_empty() {
            return None;
        }
        let phrases = query.phrases();
        let mut index: Vec<String> = Vec::new();
        for phrase in phrases {
            let (last, whole) = phrase.split_last().expect("phrases are never empty");
            let terms = whole
                .iter()
                .map(|w| quoted(cut(w)))
                .chain([format!("{}:*", quoted(cut(last)))]);
            for term in terms {
                if index.len() < MAX_INDEX_TERMS && !index.contains(&term) {
                    index.push(term);
                }
            }
        }
        let possible = phrases
            .iter()
            .all(|p| p.len() <= MAX_POSITION && p.iter().all(|w| w.len() <= MAX_WORD));
        let exact = possible.then(|| {
            let groups: Vec<String> = phrases
                .iter()
                .map(|phrase| {
                    let (last, whole) = phrase.split_last().expect("phrases are never empty");
                    let mut terms: Vec<String> = whole.iter().map(|w| quoted(w)).collect();
                    terms.push(format!("{}:*", quoted(last)));
                    format!("({})", terms.join(" <-> "))
                })
                .collect();
            groups.join(" & ")
        });
        Some(Self {
            index: index.join(" & "),
            exact,
            phrases: phrases
                .iter()
                .map(|p| format!(" {}", p.join(" ")))
                .collect(),
        })
    }

    /// Whether PostgreSQL can hold the exact tsquery (a text of more than some 16,000
    /// words, or a megabyte, cannot be searched).
    pub(crate) fn fits(&self) -> bool {
        let words: usize = self.phrases.iter().map(|p| p.split(' ').count() - 1).sum();
        let bytes: usize = self.phrases.iter().map(String::len).sum();
        2 * words < MAX_QUERY_NODES && bytes < MAX_QUERY_BYTES
    }
}

#[cfg(test)]
mod tests {
    use chat_core::store::TextQuery;

    use super::{Indexed, MAX_WORD, Search, words};

    fn search(text: &str) -> Option<Search> {
        Search::new(&TextQuery::parse(text))
    }

    #[test]
    fn words_are_chat_cores() {
        for text in [
            "My ORDER #12 (café), max@shop.example",
            "ΣΊΣΥΦΟΣ İstanbul straße ǅemal ½ 名前",
            "\"quoted\" and \"unclosed",
            " ?! ",
        ] {
            assert_eq!(words(text), TextQuery::parse(text).phrases().concat());
        }
        assert_eq!(words("Café crème"), ["café", "crème"]);
    }

    #[test]
    fn fields_store_their_words_with_positions() {
        assert_eq!(
            Indexed::of(Some("My parcel, my ORDER #12 (Café)")),
            Indexed {
                tsvector: "'12':5 'café':6 'my':1,3 'order':4 'parcel':2".into(),
                list: None,
            }
        );
        assert_eq!(Indexed::of(Some("¿¡ ... !?")), Indexed::none());
        assert_eq!(Indexed::of(None), Indexed::none());
    }

    #[test]
    fn what_a_tsvector_cannot_hold_makes_the_field_lossy() {
        let long = "é".repeat(40);
        let lossy = Indexed::of(Some(&format!("a {long}")));
        assert_eq!(
            lossy.tsvector,
            format!("'a' '{}'", "é".repeat(MAX_WORD / 2))
        );
        assert_eq!(lossy.list, Some(format!(" a {long}")));
        let repeated = Indexed::of(Some(&"the ".repeat(257)));
        assert_eq!(repeated.tsvector, "'the'");
        assert!(repeated.list.is_some());
        assert!(Indexed::of(Some(&"the ".repeat(256))).list.is_none());
        let many: String = (0..16_384).map(|n| format!("w{n} ")).collect();
        assert!(Indexed::of(Some(&many)).list.is_some());
    }

    #[test]
    fn words_are_prefixes_and_phrases_follow_each_other() {
        let s = search("REFUND \"late Parc\" max@shop").unwrap();
        assert_eq!(
            s.exact.as_deref(),
            Some("('refund':*) & ('late' <-> 'parc':*) & ('max':*) & ('shop':*)")
        );
        assert_eq!(
            s.index,
            "'refund':* & 'late' & 'parc':* & 'max':* & 'shop':*"
        );
        assert_eq!(s.phrases, [" refund", " late parc", " max", " shop"]);
        assert!(s.fits());
        assert_eq!(search("CAFÉ").unwrap().exact.as_deref(), Some("('café':*)"));
        assert_eq!(
            search("it's").unwrap().exact.as_deref(),
            Some("('it':*) & ('s':*)")
        );
    }

    #[test]
    fn a_text_too_large_for_one_tsquery_does_not_fit() {
        assert!(search(&"a ".repeat(15_000)).unwrap().fits());
        assert!(!search(&"a ".repeat(17_000)).unwrap().fits());
        let phrase = format!("\"{}\"", "w ".repeat(17_000));
        let s = search(&phrase).unwrap();
        assert_eq!(s.exact, None, "longer than any exact field");
        assert!(!s.fits());
    }

    #[test]
    fn a_text_without_words_is_no_search() {
        assert_eq!(search(" ?! \"\" "), None);
        assert_eq!(search(""), None);
    }

    #[test]
    fn an_overlong_word_is_looked_up_cut_and_only_lossy_fields_can_hold_it() {
        let long = "z".repeat(80);
        let s = search(&long).unwrap();
        assert_eq!(s.exact, None);
        assert_eq!(s.index, format!("'{}':*", "z".repeat(MAX_WORD)));
        assert_eq!(s.phrases, [format!(" {long}")]);
    }
}
