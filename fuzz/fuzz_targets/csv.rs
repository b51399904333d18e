//! CSV export escaping: rows of typed text (split at `\x1f` into fields, at `\x1e` into
//! rows) must read back, by an RFC 4180 reader, as exactly the fields written, with a
//! text that a spreadsheet would run as a formula defused by a leading `'`.
#![no_main]

use chat_server::csv::{Csv, Field};
use libfuzzer_sys::fuzz_target;

/// A strict RFC 4180 reader: quoted fields, doubled quotes, CRLF row ends.
fn read(document: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = document.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
        } else {
            match c {
                '"' => {
                    assert!(field.is_empty(), "a quote inside an unquoted field");
                    quoted = true;
                }
                ',' => row.push(std::mem::take(&mut field)),
                '\r' => {
                    assert_eq!(chars.next(), Some('\n'), "a bare CR outside quotes");
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                '\n' => panic!("a bare LF outside quotes"),
                c => field.push(c),
            }
        }
    }
    assert!(!quoted, "an unterminated quote");
    assert!(
        field.is_empty() && row.is_empty(),
        "no CRLF after the last row"
    );
    rows
}

fuzz_target!(|text: &str| {
    let rows: Vec<Vec<&str>> = text
        .split('\x1e')
        .map(|row| row.split('\x1f').collect())
        .collect();
    let mut csv = Csv::with_header(&["a", "b"]);
    for row in &rows {
        csv.row(row.iter().copied().map(Field::Text));
    }
    let back = read(&csv.finish());
    assert_eq!(back.len(), rows.len() + 1);
    for (written, read) in rows.iter().zip(&back[1..]) {
        assert_eq!(written.len(), read.len());
        for (w, r) in written.iter().zip(read) {
            if w.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                assert_eq!(r, &format!("'{w}"));
            } else {
                assert_eq!(r, w);
            }
        }
    }
});
