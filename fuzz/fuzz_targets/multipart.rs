//! Upload bodies: the input's first line is the `Content-Type` header, the rest the body,
//! read as `read_multipart` reads them (at most 3 files of 1 KiB here, so the limits are hit).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let content_type = String::from_utf8_lossy(&data[..split]);
    let body = bytes::Bytes::copy_from_slice(data.get(split + 1..).unwrap_or_default());
    let Ok(boundary) = multer::parse_boundary(content_type.as_ref()) else {
        return;
    };
    let form = futures_executor::block_on(chat_server::uploads::parse_multipart(
        body, boundary, 3, 1024,
    ));
    if let Ok(form) = form {
        assert!(form.files.len() <= 3);
        assert!(form.files.iter().all(|f| f.bytes.len() <= 1024));
    }
});
