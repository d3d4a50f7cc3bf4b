//! Bytes as text for answers: UTF-8 as it is, each invalid byte written `\xNN` so nothing is
//! silently replaced; and the test that calls a file binary.

/// `bytes` as a string; each byte that is not part of valid UTF-8 becomes `\xNN`.
pub fn escape_invalid(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        for byte in chunk.invalid() {
            text.push_str(&format!("\\x{byte:02x}"));
        }
    }
    text
}

/// How many bytes of `bytes` are not valid UTF-8.
pub fn invalid_count(bytes: &[u8]) -> usize {
    bytes.utf8_chunks().map(|chunk| chunk.invalid().len()).sum()
}

/// The offset of the first NUL byte, which marks a file as binary (as grep and ripgrep do).
pub fn first_nul(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|byte| *byte == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_bytes_are_marked_not_replaced() {
        assert_eq!(
            escape_invalid(b"caf\xc3\xa9 \xff\xfe ok"),
            "café \\xff\\xfe ok"
        );
        assert_eq!(invalid_count(b"caf\xc3\xa9 \xff\xfe ok"), 2);
        assert_eq!(first_nul(b"ab\0c"), Some(2));
    }
}
