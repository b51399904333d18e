//! CSV for exports (RFC 4180: comma-separated, CRLF line ends, fields with a comma, quote
//! or line break quoted, quotes doubled).
//!
//! A text a customer or agent wrote (feedback, a title) may start with `=`, `+`, `-`, `@`,
//! a tab or a carriage return, which spreadsheets run as a formula when the file is
//! opened: such a field gets a leading `'`, so it shows as the text it was. Numbers are
//! written by the server and never touched.

/// Builds one CSV document row by row.
#[derive(Debug, Default)]
pub struct Csv {
    out: String,
}

/// One field of a row.
pub enum Field<'a> {
    /// Text someone typed: quoted as needed and defused against formulas.
    Text(&'a str),
    /// A value the server wrote (a number, an id, a time): quoted as needed only.
    Plain(String),
}

impl Csv {
    /// A document starting with its header row.
    pub fn with_header(columns: &[&str]) -> Self {
        let mut csv = Self::default();
        csv.row(columns.iter().map(|c| Field::Plain((*c).to_owned())));
        csv
    }

    /// Appends a row.
    pub fn row<'a>(&mut self, fields: impl IntoIterator<Item = Field<'a>>) {
        for (i, field) in fields.into_iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            match field {
                Field::Text(t) => {
                    let defused = if t.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                        format!("'{t}")
                    } else {
                        t.to_owned()
                    };
                    self.push(&defused);
                }
                Field::Plain(p) => self.push(&p),
            }
        }
        self.out.push_str("\r\n");
    }

    fn push(&mut self, value: &str) {
        if value.contains([',', '"', '\n', '\r']) {
            self.out.push('"');
            self.out.push_str(&value.replace('"', "\"\""));
            self.out.push('"');
        } else {
            self.out.push_str(value);
        }
    }

    /// The document.
    pub fn finish(self) -> String {
        self.out
    }
}

/// An optional value as a plain field (empty when absent).
pub fn opt<T: ToString>(value: Option<T>) -> Field<'static> {
    Field::Plain(value.map(|v| v.to_string()).unwrap_or_default())
}

/// A value as a plain field.
pub fn plain<T: ToString>(value: T) -> Field<'static> {
    Field::Plain(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_needs_it_and_defuses_formulas() {
        let mut csv = Csv::with_header(&["a", "b", "c"]);
        csv.row([
            Field::Text("=HYPERLINK(\"x\")"),
            Field::Text("one, two\nthree"),
            plain(-3),
        ]);
        assert_eq!(
            csv.finish(),
            "a,b,c\r\n\"'=HYPERLINK(\"\"x\"\")\",\"one, two\nthree\",-3\r\n"
        );
    }
}
