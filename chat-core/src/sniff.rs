//! What a file is, decided from its bytes.
//!
//! A client's file name and declared type are whatever the client wants them to be: an
//! HTML page named `receipt.png` and sent as `image/png` would still be a page to any
//! browser that sniffs. Uploads are therefore typed by their leading bytes (the "magic
//! numbers" of each format), and anything not recognised here is refused.

/// The MIME type of `bytes` from their content, `None` for anything not recognised.
///
/// Recognised: PNG, JPEG, GIF, WebP, PDF, ZIP (and the Office Open XML documents that
/// are ZIP files: `.docx`, `.xlsx`, `.pptx`), and plain text (UTF-8 without control
/// characters other than tabs, line and page breaks).
///
/// ```
/// use chat_core::detect_content_type;
/// assert_eq!(detect_content_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
/// assert_eq!(detect_content_type(b"%PDF-1.7\n"), Some("application/pdf"));
/// assert_eq!(detect_content_type(b"hello\n"), Some("text/plain"));
/// // A page pretending to be an image is text, and an executable is nothing we know.
/// assert_eq!(detect_content_type(b"MZ\x90\x00\x03"), None);
/// ```
pub fn detect_content_type(bytes: &[u8]) -> Option<&'static str> {
    const ZIP: &[u8] = b"PK\x03\x04";
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"\xFF\xD8\xFF") {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if bytes.starts_with(b"OggS") {
        // Voice notes: Telegram's `voice` and WhatsApp's are Opus in an Ogg container.
        Some("audio/ogg")
    } else if bytes.starts_with(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        // The compound file of legacy Office documents (.doc, .xls, .ppt): which one it is
        // lies deep inside, so the bytes give the family only (see `refine_content_type`).
        Some(OFFICE_LEGACY)
    } else if bytes.starts_with(ZIP) {
        Some(office_kind(bytes).unwrap_or("application/zip"))
    } else if is_plain_text(bytes) {
        Some("text/plain")
    } else {
        None
    }
}

/// The type of a legacy Office compound file whose application the bytes do not tell.
const OFFICE_LEGACY: &str = "application/vnd.ms-office";

/// Members of a family the bytes prove but cannot tell apart, and the family they belong
/// to: a client may name the member, never step outside the family.
const MEMBERS: &[(&str, &str)] = &[
    ("application/msword", OFFICE_LEGACY),
    ("application/vnd.ms-excel", OFFICE_LEGACY),
    ("application/vnd.ms-powerpoint", OFFICE_LEGACY),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/zip",
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/zip",
    ),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/zip",
    ),
];

/// The stored type of an upload: what the bytes say ([`detect_content_type`]), narrowed
/// to the client's declared type only where the bytes prove a family but not its member
/// (a legacy `.xls` and `.doc` are the same compound file to a sniffer; an Office Open
/// XML file may not list its folder early). A declared type outside the proven family is
/// ignored. `None` when the bytes are no known type.
///
/// ```
/// use chat_core::refine_content_type;
/// let xls = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1 rest of the file";
/// assert_eq!(refine_content_type(xls, "application/vnd.ms-excel"), Some("application/vnd.ms-excel"));
/// // Declaring an image does not make it one.
/// assert_eq!(refine_content_type(xls, "image/png"), Some("application/vnd.ms-office"));
/// assert_eq!(refine_content_type(b"%PDF-1.7", "text/html"), Some("application/pdf"));
/// ```
pub fn refine_content_type(bytes: &[u8], declared: &str) -> Option<&'static str> {
    let detected = detect_content_type(bytes)?;
    let declared = declared
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(
        MEMBERS
            .iter()
            .find(|(member, family)| *member == declared && *family == detected)
            .map_or(detected, |(member, _)| member),
    )
}

/// An Office Open XML document is a ZIP whose entries live under a folder that names the
/// application; the entry names are stored uncompressed in the local file headers.
fn office_kind(bytes: &[u8]) -> Option<&'static str> {
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    if !has(b"[Content_Types].xml") {
        return None;
    }
    if has(b"word/") {
        Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    } else if has(b"xl/") {
        Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    } else if has(b"ppt/") {
        Some("application/vnd.openxmlformats-officedocument.presentationml.presentation")
    } else {
        None
    }
}

/// UTF-8 with no control characters but tab, line feed, carriage return and form feed:
/// what a person would call a text file (no NUL bytes, no escape sequences).
fn is_plain_text(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}'))
}

#[cfg(test)]
mod tests {
    use super::{detect_content_type, refine_content_type};

    #[test]
    fn each_common_format_is_known_by_its_leading_bytes() {
        for (bytes, expected) in [
            (&b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..], Some("image/png")),
            (b"\xFF\xD8\xFF\xE0\0\x10JFIF", Some("image/jpeg")),
            (b"GIF89a\x01\0\x01\0", Some("image/gif")),
            (b"RIFF\x24\0\0\0WEBPVP8 ", Some("image/webp")),
            (b"%PDF-1.4\n", Some("application/pdf")),
            (b"PK\x03\x04\x14\0\0\0hello.txt", Some("application/zip")),
            (
                b"PK\x03\x04\x14\0[Content_Types].xml....PK\x03\x04word/document.xml",
                Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            ),
            (
                b"PK\x03\x04[Content_Types].xml xl/workbook.xml",
                Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            ),
            ("order #42: déjà vu\r\n\tok".as_bytes(), Some("text/plain")),
            (b"MZ\x90\0\x03\0", None),
            (b"\x7fELF\x02\x01", None),
            (b"text with a NUL\0 inside", None),
            (b"\x1b[31mred\x1b[0m", None),
            (b"", None),
            (b"RIFF\x24\0\0\0WAVEfmt ", None),
            (
                b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0",
                Some("application/vnd.ms-office"),
            ),
        ] {
            assert_eq!(detect_content_type(bytes), expected, "{bytes:?}");
        }
    }

    #[test]
    fn a_declared_type_only_names_a_member_of_the_family_the_bytes_prove() {
        let cfb = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0";
        let zip = b"PK\x03\x04\x14\0\0\0data";
        for (bytes, declared, expected) in [
            (&cfb[..], "application/msword", "application/msword"),
            (
                cfb,
                "APPLICATION/VND.MS-EXCEL; x=y",
                "application/vnd.ms-excel",
            ),
            (cfb, "application/pdf", "application/vnd.ms-office"),
            (
                zip,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            (zip, "application/msword", "application/zip"),
            (b"hello", "image/png", "text/plain"),
        ] {
            assert_eq!(
                refine_content_type(bytes, declared),
                Some(expected),
                "{declared}"
            );
        }
        assert_eq!(refine_content_type(b"MZ\x90\0", "image/png"), None);
    }
}
