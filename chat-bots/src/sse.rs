//! Server-sent events, as far as chat-completions streams use them.
//!
//! Every OpenAI-compatible server sends one JSON payload per `data:` line, events separated
//! by a blank line, and ends with `data: [DONE]`. The decoder yields each `data:` line's
//! payload as soon as its line is complete, so a server that forgets the blank lines still
//! works; comments (`:` keep-alives) and other fields (`event:`, `id:`, `retry:`) are
//! skipped.

use chat_core::{Error, Result};

/// Splits a byte stream into `data:` payloads, holding at most `max_line` bytes of an
/// unfinished line.
#[derive(Debug)]
pub(crate) struct SseDecoder {
    pending: Vec<u8>,
    max_line: usize,
}

impl SseDecoder {
    pub(crate) fn new(max_line: usize) -> Self {
        Self {
            pending: Vec::new(),
            max_line,
        }
    }

    /// Feeds the next chunk; complete payloads are pushed to `out` in order.
    pub(crate) fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) -> Result<()> {
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let line = if self.pending.is_empty() {
                &rest[..end]
            } else {
                self.pending.extend_from_slice(&rest[..end]);
                &self.pending[..]
            };
            if line.len() > self.max_line {
                return Err(crate::http::too_large(self.max_line));
            }
            if let Some(payload) = data_payload(line)? {
                out.push(payload);
            }
            self.pending.clear();
            rest = &rest[end + 1..];
        }
        if self.pending.len() + rest.len() > self.max_line {
            return Err(crate::http::too_large(self.max_line));
        }
        self.pending.extend_from_slice(rest);
        Ok(())
    }

    /// The payload of a last line the server did not end with a newline.
    pub(crate) fn finish(&mut self, out: &mut Vec<String>) -> Result<()> {
        let line = std::mem::take(&mut self.pending);
        if let Some(payload) = data_payload(&line)? {
            out.push(payload);
        }
        Ok(())
    }
}

/// The value of a `data:` line (one optional space after the colon dropped), else `None`.
fn data_payload(line: &[u8]) -> Result<Option<String>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(value) = line.strip_prefix(b"data:") else {
        return Ok(None);
    };
    let value = value.strip_prefix(b" ").unwrap_or(value);
    let text = std::str::from_utf8(value)
        .map_err(|_| Error::bot(chat_core::BotErrorKind::Format, "stream is not UTF-8"))?
        .to_owned();
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&str]) -> Vec<String> {
        let mut decoder = SseDecoder::new(1024);
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.feed(chunk.as_bytes(), &mut out).unwrap();
        }
        decoder.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn payloads_split_across_chunks_are_joined() {
        let out = decode(&[
            ": keep-alive\n\nda",
            "ta: {\"a\":1}\r\n\r\nevent: x\ndata:{\"b\"",
            ":2}\n\ndata: [DONE]",
        ]);
        assert_eq!(out, ["{\"a\":1}", "{\"b\":2}", "[DONE]"]);
    }

    #[test]
    fn a_line_longer_than_the_limit_is_refused() {
        let mut decoder = SseDecoder::new(12);
        let mut out = Vec::new();
        assert!(decoder.feed(b"data: 0123", &mut out).is_ok());
        assert!(matches!(
            decoder.feed(b"456789", &mut out),
            Err(Error::Bot(_))
        ));
        let mut decoder = SseDecoder::new(12);
        assert!(decoder.feed(b"data: 0123456789\n", &mut out).is_err());
    }
}
