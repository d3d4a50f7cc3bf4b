//! Bytes as text for answers: UTF-8 as it is, each invalid byte written `\xNN` so nothing is
//! silently replaced; and the test that calls a file binary.

/// `bytes` as a string; each byte that is not part of valid UTF-8 becomes `\xNN`.
pub(crate) fn escape_invalid(bytes: &[u8]) -> String {
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
pub(crate) fn invalid_count(bytes: &[u8]) -> usize {
    bytes.utf8_chunks().map(|chunk| chunk.invalid().len()).sum()
}

/// Bytes read past a cut to see whether it splits a character: a UTF-8 character is at
/// most four bytes, so three more decide it.
pub(crate) const LOOKAHEAD: u64 = 3;

/// The character a cut at `at` would split: its start and end in `bytes`, when `at` falls
/// strictly inside a complete, valid UTF-8 character of `bytes`. `None` when `at` is on a
/// boundary, or the bytes around it are not valid UTF-8 (no cut can mend those: they are
/// really invalid in the file and are shown as `\xNN`).
pub(crate) fn split_char(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    for back in 1..=at.min(3) {
        let lead = bytes[at - back];
        if lead & 0xc0 == 0x80 {
            continue; // A continuation byte: the character starts further back.
        }
        let length = match lead {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => return None,
        };
        let (start, end) = (at - back, at - back + length);
        let whole = length > back
            && bytes
                .get(start..end)
                .is_some_and(|character| std::str::from_utf8(character).is_ok());
        return whole.then_some((start, end));
    }
    None
}

/// Where to cut `bytes` to keep at most about `at` of them without splitting a character:
/// `at`, or the start of the character it would split; the end of that character when it
/// starts at 0 (a budget smaller than one character still gives that character, so a
/// reader paging on always moves forward).
pub(crate) fn cut_before(bytes: &[u8], at: usize) -> usize {
    match split_char(bytes, at) {
        Some((0, end)) => end,
        Some((start, _)) => start,
        None => at.min(bytes.len()),
    }
}

/// The offset of the first NUL byte, which marks a file as binary (as grep and ripgrep do).
pub(crate) fn first_nul(bytes: &[u8]) -> Option<usize> {
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

    #[test]
    fn cuts_fall_between_characters() {
        let text = "aあb".as_bytes(); // a, e3 81 82, b
        assert_eq!(split_char(text, 2), Some((1, 4)));
        assert_eq!(split_char(text, 3), Some((1, 4)));
        assert_eq!(split_char(text, 1), None);
        assert_eq!(split_char(text, 4), None);
        assert_eq!(cut_before(text, 3), 1);
        assert_eq!(cut_before("あい".as_bytes(), 2), 3);
        // Without the rest of the character, or with invalid bytes, nothing is moved.
        assert_eq!(split_char(&text[..3], 2), None);
        assert_eq!(split_char(b"a\xe3\x81z", 2), None);
        assert_eq!(cut_before(b"\xff\xfe\xfd", 1), 1);
    }
}
