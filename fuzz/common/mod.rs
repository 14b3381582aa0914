//! Checks shared by the targets (each includes this file with `#[path]`).

#![allow(dead_code, reason = "each target uses some of these")]

use std::fmt::Write as _;

/// `secret` shows in `text`: its bytes as text (when at least 8 long), in lowercase or
/// uppercase hex, in standard base64, or as the start of a `Debug` list (`[1, 2, 3, ...`).
pub fn shows(text: &str, secret: &[u8]) -> bool {
    if secret.len() < 8 {
        return false;
    }
    let lossy = String::from_utf8_lossy(secret);
    if text.contains(&*lossy) {
        return true;
    }
    let mut hex = String::new();
    for b in secret {
        let _ = write!(hex, "{b:02x}");
    }
    if text.contains(&hex) || text.contains(&hex.to_uppercase()) {
        return true;
    }
    if text.contains(&encrypted_core::encode_base64(secret)) {
        return true;
    }
    let list = format!("{:?}", &secret[..8]);
    text.contains(&list[..list.len() - 1])
}

/// An error's `Display`, alternate `Display` and `Debug`, with its sources.
pub fn describe(e: &dyn std::error::Error) -> String {
    let mut text = format!("{e} | {e:#} | {e:?}");
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(text, " | {s} | {s:?}");
        source = s.source();
    }
    text
}
