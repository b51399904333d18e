//! A conversation's transcript as plain text or HTML (the JSON form is the views'
//! serialization). Everything a customer or agent wrote is escaped in HTML: a body like
//! `<script>` shows as text, never as markup.

use chat_core::{Message, MessageKind, Sender, Transcript};
use time::format_description::well_known::Rfc3339;

fn when(at: time::OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// Who wrote `message`, as the transcript names it: staff by name for staff readers,
/// "Agent" for customers.
pub fn author(transcript: &Transcript, message: &Message) -> String {
    let who = match message.sender {
        Sender::Customer => "Customer".to_owned(),
        Sender::Bot => "Bot".to_owned(),
        Sender::System => "System".to_owned(),
        Sender::Agent(id) => match transcript.staff_names.get(&id) {
            Some(name) => format!("Agent {name}"),
            None => "Agent".to_owned(),
        },
    };
    if message.kind == MessageKind::Note {
        format!("Internal note by {who}")
    } else {
        who
    }
}

fn body(message: &Message) -> String {
    if message.deleted_at.is_some() {
        return "(deleted)".to_owned();
    }
    let mut text = message.body.clone();
    for a in &message.attachments {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!("[attachment: {} ({} bytes)]", a.name, a.size));
    }
    if message.edited_at.is_some() {
        text.push_str(" (edited)");
    }
    text
}

fn heading(transcript: &Transcript) -> Vec<String> {
    let c = &transcript.conversation;
    let mut lines = vec![format!(
        "Conversation {}{}",
        c.id.0,
        c.title
            .as_deref()
            .map(|t| format!(": {t}"))
            .unwrap_or_default()
    )];
    lines.push(format!(
        "Channel {}, opened {}{}",
        c.channel.as_str(),
        when(c.created_at),
        c.closed_at
            .map(|at| format!(", closed {}", when(at)))
            .unwrap_or_default()
    ));
    if transcript.truncated {
        lines.push(format!(
            "Only the first {} messages are shown.",
            transcript.messages.len()
        ));
    }
    lines
}

/// The transcript as plain text: a heading, then one block per message.
pub fn text(transcript: &Transcript) -> String {
    let mut out = heading(transcript).join("\n");
    out.push_str("\n\n");
    for m in &transcript.messages {
        out.push_str(&format!(
            "[{}] {}:\n{}\n\n",
            when(m.created_at),
            author(transcript, m),
            body(m)
        ));
    }
    out
}

/// `text` with HTML's special characters escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The transcript as a standalone HTML page with no script and no external resource.
pub fn html(transcript: &Transcript) -> String {
    let heading = heading(transcript);
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
    );
    out.push_str(&format!("<title>{}</title>", escape(&heading[0])));
    out.push_str(
        "<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}\
         .m{margin:1rem 0}.who{font-weight:600}.at{color:#555;font-size:.85em}\
         .note{background:#fff7d6;padding:.25rem .5rem}.body{white-space:pre-wrap}</style></head><body>",
    );
    out.push_str(&format!("<h1>{}</h1>", escape(&heading[0])));
    for line in &heading[1..] {
        out.push_str(&format!("<p>{}</p>", escape(line)));
    }
    for m in &transcript.messages {
        let class = if m.kind == MessageKind::Note {
            "m note"
        } else {
            "m"
        };
        out.push_str(&format!(
            "<div class=\"{class}\"><span class=\"who\">{}</span> <span class=\"at\">{}</span>\
             <div class=\"body\">{}</div></div>",
            escape(&author(transcript, m)),
            escape(&when(m.created_at)),
            escape(&body(m))
        ));
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_covers_every_special_character() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }
}
