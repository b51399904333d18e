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

impl TextQuery {
    /// Where in `haystack` the text matches, as byte ranges of whole words, in order and
    /// not overlapping: every word of every place a phrase is found (a phrase's last word
    /// whole, though only its start was asked for). Empty when it does not match, so a
    /// snippet never marks a word of a text the search did not find.
    pub fn highlights(&self, haystack: &str) -> Vec<std::ops::Range<usize>> {
        if !self.matches(haystack) {
            return Vec::new();
        }
        let spans = word_spans(haystack);
        let words: Vec<String> = spans
            .iter()
            .map(|r| haystack[r.clone()].to_lowercase())
            .collect();
        let mut marked = vec![false; spans.len()];
        for phrase in &self.phrases {
            let (last, whole) = phrase.split_last().expect("phrases are never empty");
            for start in 0..words.len().saturating_sub(phrase.len() - 1) {
                let at = &words[start..start + phrase.len()];
                if at[..whole.len()] == *whole && at[whole.len()].starts_with(last.as_str()) {
                    marked[start..start + phrase.len()].fill(true);
                }
            }
        }
        spans
            .into_iter()
            .zip(marked)
            .filter_map(|(span, marked)| marked.then_some(span))
            .collect()
    }
}

/// A short extract of a message around where a search matched, for a results list.
///
/// `text` is plain text, never markup: a client draws the `highlights`, ranges of
/// characters (Unicode scalar values, not bytes) of `text`, `[start, end)`, however it
/// draws a match. Line breaks and tabs are spaces in it; `…` marks where the message was
/// cut.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snippet {
    /// Plain text (never markup), about 160 characters around the first match; line
    /// breaks as spaces, `…` where the message was cut.
    pub text: String,
    /// The matched words, as `[start, end)` offsets in characters (Unicode scalar values)
    /// of `text`, in order.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::highlights))]
    pub highlights: Vec<[usize; 2]>,
}

impl Snippet {
    /// About `max_chars` characters of `body` around its first match of `query` (the
    /// beginning when it has none), with every match inside them marked.
    ///
    /// ```
    /// use chat_core::store::{Snippet, TextQuery};
    ///
    /// let s = Snippet::new("Where is my parcel? Ordered a kettle.", &TextQuery::parse("kett"), 80);
    /// assert_eq!(s.text, "Where is my parcel? Ordered a kettle.");
    /// assert_eq!(s.highlights, [[30, 36]]);
    /// ```
    pub fn new(body: &str, query: &TextQuery, max_chars: usize) -> Self {
        let max_chars = max_chars.max(16);
        let chars: Vec<(usize, char)> = body.char_indices().collect();
        let char_at = |byte: usize| chars.partition_point(|(b, _)| *b < byte);
        let marks: Vec<(usize, usize)> = query
            .highlights(body)
            .into_iter()
            .map(|r| (char_at(r.start), char_at(r.end)))
            .collect();
        // A third of the room before the first match, the rest after it.
        let first = marks.first().map_or(0, |m| m.0);
        let mut start = first.saturating_sub(max_chars / 3);
        let end = (start + max_chars).min(chars.len());
        start = end.saturating_sub(max_chars).min(start);
        // Not in the middle of a word, when there is a space to start from nearby.
        if start > 0
            && let Some(space) = chars[start..first.max(start)]
                .iter()
                .position(|(_, c)| c.is_whitespace())
        {
            start += space + 1;
        }
        let mut text = String::new();
        let lead = usize::from(start > 0);
        if start > 0 {
            text.push('…');
        }
        text.extend(
            chars[start..end]
                .iter()
                .map(|(_, c)| if c.is_control() { ' ' } else { *c }),
        );
        if end < chars.len() {
            text.push('…');
        }
        let highlights = marks
            .into_iter()
            .filter(|(s, e)| *s >= start && *e <= end)
            .map(|(s, e)| [s - start + lead, e - start + lead])
            .collect();
        Self { text, highlights }
    }
}

/// The byte ranges of the words of `text` (see [`words`]).
fn word_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push(s..text.len());
    }
    spans
}

/// The lower-case words of `text`, as [`TextQuery`] sees them: a store that keeps its own
/// word index splits bodies with this, so its words are exactly the ones searches compare.
///
/// ```
/// assert_eq!(chat_core::store::text_words("Max@Shop, 2 CAFÉS"), ["max", "shop", "2", "cafés"]);
/// ```
pub fn words(text: &str) -> Vec<String> {
    let mut all = Vec::new();
    each_word(text, |word| all.push(word.to_owned()));
    all
}

/// Calls `f` with each of [`words`]' words in turn, without a `String` per word: an ASCII
/// word already in lower case is handed out as it is in `text`, another ASCII word lowered
/// in a buffer reused for the next (for ASCII, `to_lowercase` is exactly that). A search
/// index that looks most words up before it keeps any (chat-sqlite's indexer) spends
/// otherwise an allocation per word.
///
/// ```
/// let mut seen = Vec::new();
/// chat_core::store::each_text_word("Max@Shop, 2 CAFÉS", |w| seen.push(w.to_owned()));
/// assert_eq!(seen, chat_core::store::text_words("Max@Shop, 2 CAFÉS"));
/// ```
pub fn each_word(text: &str, mut f: impl FnMut(&str)) {
    let mut lowered = String::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        if !word.is_ascii() {
            f(&word.to_lowercase());
        } else if word.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered.clear();
            lowered.push_str(word);
            lowered.make_ascii_lowercase();
            f(&lowered);
        } else {
            f(word);
        }
    }
}

/// Whether `haystack` matches the search text `needle` (see [`TextQuery`]).
pub fn text_matches(haystack: &str, needle: &str) -> bool {
    TextQuery::parse(needle).matches(haystack)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `each_word` hands out exactly the words `to_lowercase` makes of each run of
    /// alphanumerics (the definition searches compare against), ASCII or not.
    #[test]
    fn each_word_gives_the_lowercased_words() {
        for text in [
            "Hello, I ordered a BLUE kettle #4521-88. Thanks!",
            "Max@Shop, 2 CAFÉS",
            "ΟΔΟΣ Σ σ İstanbul ǅemal",
            "mIxEd ascii and Ünïcödé, 12ab AB12",
            "",
            "  ,,, ",
        ] {
            let reference: Vec<String> = text
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .collect();
            let mut seen = Vec::new();
            each_word(text, |w| seen.push(w.to_owned()));
            assert_eq!(seen, reference, "{text:?}");
            assert_eq!(words(text), reference, "{text:?}");
        }
    }

    #[test]
    fn highlights_mark_whole_words_of_every_place_a_phrase_is_found() {
        let q = TextQuery::parse("ref \"late parc\"");
        let body = "Refund? My late parcel, late again: refunds";
        let marked: Vec<&str> = q.highlights(body).into_iter().map(|r| &body[r]).collect();
        assert_eq!(marked, ["Refund", "late", "parcel", "refunds"]);
        // No match, no marks: "late" alone is not the phrase.
        assert!(
            TextQuery::parse("\"late parcel\" zebra")
                .highlights(body)
                .is_empty()
        );
    }

    #[test]
    fn snippets_cut_around_the_first_match_and_count_characters() {
        let body = format!(
            "{} Café crème\nis cold {}",
            "word ".repeat(40),
            "tail ".repeat(40)
        );
        let s = Snippet::new(&body, &TextQuery::parse("CAFÉ cold"), 60);
        assert!(
            s.text.starts_with('…') && s.text.ends_with('…'),
            "{}",
            s.text
        );
        assert!(!s.text.contains('\n'));
        let chars: Vec<char> = s.text.chars().collect();
        let marked: Vec<String> = s
            .highlights
            .iter()
            .map(|[a, b]| chars[*a..*b].iter().collect())
            .collect();
        assert_eq!(marked, ["Café", "cold"]);
        assert!(chars.len() <= 62);
        // A short message whole, unmarked when it does not match.
        let short = Snippet::new("hello there", &TextQuery::parse("zebra"), 60);
        assert_eq!(
            (short.text.as_str(), short.highlights.len()),
            ("hello there", 0)
        );
    }

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
