//! What a conversation search's text means: words, prefixes and phrases, as a word index
//! can answer them.
//!
//! A substring search ("efun" finds "refund") cannot be looked up in a word index: every
//! store would have to read every message body, and a search over a year of messages took
//! seconds. So the text filter matches words:
//!
//! - each word of the text must start a word of the searched field (`refund` finds
//!   "refunds", `ord 12` finds "order 1234"), in any order;
//! - words in double quotes must follow each other in that order (`"late parcel"`), the last
//!   one again as a prefix;
//! - words are runs of letters and digits (`char::is_alphanumeric`), compared in lower case;
//!   everything else separates them, so `max@shop` is the words `max` and `shop`;
//! - a text with no word in it matches nothing.
//!
//! Stores with a word index (SQLite's FTS5 `unicode61`, PostgreSQL's `tsvector`) look the
//! words up and check each candidate with [`TextQuery::matches`], so every store answers
//! exactly as the in-memory one does.

/// A parsed search text: groups of words that must all be found, each group a phrase
/// (one word is a phrase of one).
///
/// ```
/// use chat_core::store::TextQuery;
///
/// let q = TextQuery::parse("refund \"late PARC\"");
/// assert!(q.matches("Refunds for a late parcel, please"));
/// assert!(!q.matches("a late order and a parcel, refund"));
/// assert!(!TextQuery::parse("efun").matches("refund"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextQuery {
    phrases: Vec<Vec<String>>,
}

impl TextQuery {
    /// Parses `text`: quoted parts are phrases, every other word is a phrase of its own.
    /// An unmatched quote runs to the end of the text.
    pub fn parse(text: &str) -> Self {
        let mut phrases = Vec::new();
        for (n, part) in text.split('"').enumerate() {
            let words = words(part);
            if n % 2 == 1 {
                if !words.is_empty() {
                    phrases.push(words);
                }
            } else {
                phrases.extend(words.into_iter().map(|w| vec![w]));
            }
        }
        Self { phrases }
    }

    /// The phrases, each a list of lower-case words; all must be found. The last word of
    /// each is a prefix.
    pub fn phrases(&self) -> &[Vec<String>] {
        &self.phrases
    }

    /// Whether the text has no word (and so matches nothing).
    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty()
    }

    /// Whether every phrase is found in `haystack`.
    pub fn matches(&self, haystack: &str) -> bool {
        if self.phrases.is_empty() {
            return false;
        }
        let words = words(haystack);
        self.phrases.iter().all(|phrase| {
            let (last, whole) = phrase.split_last().expect("phrases are never empty");
            words
                .windows(phrase.len())
                .any(|at| at[..whole.len()] == *whole && at[whole.len()].starts_with(last.as_str()))
        })
    }
}

/// The lower-case words of `text`.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether `haystack` matches the search text `needle` (see [`TextQuery`]).
pub fn text_matches(haystack: &str, needle: &str) -> bool {
    TextQuery::parse(needle).matches(haystack)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_prefixes_in_any_order_and_case() {
        assert!(text_matches("My ORDER 12345 is late", "late ord 123"));
        assert!(text_matches("ann@example.com", "ANN@example"));
        assert!(text_matches("Café crème", "CAFÉ"));
        assert!(!text_matches("refund", "efun"));
        assert!(!text_matches("refund", "refunds"));
    }

    #[test]
    fn quoted_words_must_follow_each_other() {
        assert!(text_matches("a late parcel today", "\"late parc\""));
        assert!(!text_matches("a parcel, late", "\"late parcel\""));
        assert!(
            text_matches("a late parcel", "\"late parcel"),
            "unclosed quote"
        );
    }

    #[test]
    fn a_text_without_words_matches_nothing() {
        assert!(TextQuery::parse(" ?! \"\" ").is_empty());
        assert!(!text_matches("?!", "?!"));
    }
}
