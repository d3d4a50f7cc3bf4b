//! Small helpers for the compact text renderings tools return next to their structured answers.
//!
//! Text renderings are what many clients show the model, so a string from the host or from a
//! client (a process name, a file name, a label, a log line) must never be able to forge a row
//! or hide what it says: a name holding a newline would otherwise print as two rows. Every
//! such string goes through [`text`] (or [`bytes_text`] for raw bytes such as file names),
//! which writes control characters, C1 controls and bidirectional/format characters as
//! visible escapes, and a backslash as `\\`, so the escaped form is unambiguous and
//! [`unescape`] turns it back into the exact bytes.

use std::borrow::Cow;

/// Bytes in binary units with three significant digits: `512 B`, `1.50 KiB`, `23.5 GiB`.
pub(crate) fn bytes(value: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if value < 1024 {
        return format!("{value} B");
    }
    let mut scaled = value as f64 / 1024.0;
    let mut unit = 0;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    let decimals = if scaled < 10.0 {
        2
    } else if scaled < 100.0 {
        1
    } else {
        0
    };
    format!("{scaled:.decimals$} {}", UNITS[unit])
}

/// At most `chars` characters of `text`, with `…` marking a cut (on a character boundary).
pub(crate) fn cut(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// How a character is written in a text rendering: `None` when it is shown as it is.
///
/// C0 controls and DEL as `\n`, `\r`, `\t` or `\xNN`; C1 controls and the characters that
/// reorder or hide text (Arabic letter mark, LRM/RLM, the bidi embeddings and overrides
/// U+202A–U+202E, the isolates U+2066–U+2069, and zero-width and BOM format characters) as
/// `\u{XXXX}`; a backslash as `\\` when `backslash` is set.
fn escape_of(character: char, backslash: bool) -> Option<Cow<'static, str>> {
    Some(match character {
        '\\' if backslash => Cow::Borrowed("\\\\"),
        '\n' => Cow::Borrowed("\\n"),
        '\r' => Cow::Borrowed("\\r"),
        '\t' => Cow::Borrowed("\\t"),
        '\0'..='\x1f' | '\x7f' => Cow::Owned(format!("\\x{:02x}", character as u32)),
        '\u{80}'..='\u{9f}'
        | '\u{61c}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{2069}'
        | '\u{feff}' => Cow::Owned(format!("\\u{{{:04x}}}", character as u32)),
        _ => return None,
    })
}

fn escaped<'a>(value: &'a str, backslash: bool, keep: &[char]) -> Cow<'a, str> {
    let needs =
        |character: char| !keep.contains(&character) && escape_of(character, backslash).is_some();
    if !value.chars().any(needs) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for character in value.chars() {
        match escape_of(character, backslash) {
            Some(escape) if !keep.contains(&character) => out.push_str(&escape),
            _ => out.push(character),
        }
    }
    Cow::Owned(out)
}

/// A host- or client-supplied string as it may appear in a text rendering: one line of
/// visible characters, with controls, C1 and bidi/format characters escaped (see
/// `escape_of`) and `\` doubled, so the form is unambiguous and [`unescape`] reverses it.
/// Borrowed when nothing needed escaping.
pub(crate) fn text(value: &str) -> Cow<'_, str> {
    escaped(value, true, &[])
}

/// Raw bytes (a file name, a path) as [`text`] writes them, with each byte that is not part of
/// valid UTF-8 written `\xNN`. This is also the form file names take in structured answers,
/// and the form the file tools accept back ([`unescape`]).
pub(crate) fn bytes_text(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for chunk in value.utf8_chunks() {
        out.push_str(&text(chunk.valid()));
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// A sentence the server wrote (a note, an error) that may quote values: controls and bidi
/// characters escaped as in [`text`], backslashes left alone, since quoted names are already
/// in their escaped form and must stay copyable.
pub(crate) fn sentence(value: &str) -> Cow<'_, str> {
    escaped(value, false, &[])
}

/// A block of content shown as it is (a file's text, a command's output): newlines and tabs
/// kept, every other control and bidi character escaped as in [`text`], backslashes left
/// alone (the block is shown, never taken back).
pub(crate) fn block(value: &str) -> Cow<'_, str> {
    escaped(value, false, &['\n', '\t'])
}

/// Each of `values` through [`text`], joined by `separator`: a command line, a list of tags.
pub(crate) fn join<S: AsRef<str>>(values: &[S], separator: &str) -> String {
    values
        .iter()
        .map(|value| text(value.as_ref()))
        .collect::<Vec<_>>()
        .join(separator)
}

/// Why an escaped name could not be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadEscape {
    /// Byte offset of the backslash that starts the escape.
    pub at: usize,
    /// The escape as written (at most a few characters).
    pub escape: String,
}

impl std::fmt::Display for BadEscape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` at byte {} is not an escape this server writes (`\\\\` for a backslash, \
             `\\xNN`, `\\n`, `\\r`, `\\t`, `\\u{{XXXX}}`)",
            sentence(&self.escape),
            self.at
        )
    }
}

/// The bytes an escaped string stands for: the inverse of [`text`] and [`bytes_text`].
/// Characters other than a backslash stand for themselves (so a raw control character is
/// accepted too); `\\` is a backslash, `\xNN` the byte NN, `\n` `\r` `\t` those controls,
/// `\u{X..}` that character. Any other backslash sequence is an error that says where.
pub(crate) fn unescape(value: &str) -> Result<Cow<'_, [u8]>, BadEscape> {
    if !value.contains('\\') {
        return Ok(Cow::Borrowed(value.as_bytes()));
    }
    unescape_bytes(value.as_bytes()).map(Cow::Owned)
}

/// [`unescape`] over bytes that may themselves hold raw bytes which are not UTF-8 (a
/// percent-decoded URI): every escape is ASCII, so other bytes stand for themselves.
pub(crate) fn unescape_bytes(value: &[u8]) -> Result<Vec<u8>, BadEscape> {
    let mut out = Vec::with_capacity(value.len());
    let mut at = 0;
    while at < value.len() {
        if value[at] != b'\\' {
            out.push(value[at]);
            at += 1;
            continue;
        }
        let escape = &value[at..];
        let bad = |length: usize| BadEscape {
            at,
            escape: String::from_utf8_lossy(&escape[..length.min(escape.len())]).into_owned(),
        };
        let hex = |digits: &[u8]| {
            std::str::from_utf8(digits)
                .ok()
                .filter(|digits| digits.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|digits| u32::from_str_radix(digits, 16).ok())
        };
        let used = match escape.get(1) {
            Some(b'\\') => {
                out.push(b'\\');
                2
            }
            Some(b'n') => {
                out.push(b'\n');
                2
            }
            Some(b'r') => {
                out.push(b'\r');
                2
            }
            Some(b't') => {
                out.push(b'\t');
                2
            }
            Some(b'x') => {
                let byte = escape.get(2..4).and_then(hex).ok_or_else(|| bad(4))?;
                out.push(byte as u8);
                4
            }
            Some(b'u') => {
                // `\u{X}` to `\u{XXXXXX}`: the closing brace is at most 9 bytes in.
                let close = escape
                    .iter()
                    .take(10)
                    .position(|byte| *byte == b'}')
                    .ok_or_else(|| bad(10))?;
                let character = (escape.get(2) == Some(&b'{') && close > 3)
                    .then(|| hex(&escape[3..close]))
                    .flatten()
                    .and_then(char::from_u32)
                    .ok_or_else(|| bad(close + 1))?;
                let mut buffer = [0u8; 4];
                out.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
                close + 1
            }
            _ => return Err(bad(2)),
        };
        at += used;
    }
    Ok(out)
}

/// `count` and the noun, singular for one: `1 entry`, `2 entries`, `0 lines`.
pub(crate) fn count<N: std::fmt::Display + PartialEq + From<u8>>(
    count: N,
    singular: &str,
    plural: &str,
) -> String {
    let noun = if count == N::from(1) {
        singular
    } else {
        plural
    };
    format!("{count} {noun}")
}

/// For `#[serde(skip_serializing_if = "crate::render::is_zero")]`: counters that are zero
/// are left out of an answer.
pub(crate) fn is_zero<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// A duration in seconds as its two largest units: `3d 4h`, `5h 12m`, `42s`.
pub(crate) fn duration(seconds: u64) -> String {
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds / 3_600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, _) => format!("{minutes}m {secs}s"),
        (0, _, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(24_684_096 * 1024), "23.5 GiB");
        assert_eq!(bytes(300 * 1024 * 1024 * 1024), "300 GiB");
    }

    #[test]
    fn host_strings_cannot_forge_rows_or_hide_text() {
        assert_eq!(text("sshd"), "sshd");
        assert!(matches!(text("plain name"), Cow::Borrowed(_)));
        assert_eq!(
            text("x\n1 root running\r\t\x1b[31m\x7f"),
            "x\\n1 root running\\r\\t\\x1b[31m\\x7f"
        );
        assert_eq!(
            text("evil\u{202e}txt.exe\u{85}\u{2066}"),
            "evil\\u{202e}txt.exe\\u{0085}\\u{2066}"
        );
        assert_eq!(text("a\\b"), "a\\\\b");
        assert_eq!(text("café ✓"), "café ✓");
        assert_eq!(sentence("`a\\xff` is\nfake"), "`a\\xff` is\\nfake");
        assert_eq!(block("l1\n\tl2\x1b\r\n"), "l1\n\tl2\\x1b\\r\n");
    }

    #[test]
    fn escaped_names_read_back_to_the_same_bytes() {
        let names: [&[u8]; 6] = [
            b"bad\xff.txt",
            b"back\\slash",
            b"x\n1 root \x1b[0m",
            "rtl\u{202e}gpj.exe".as_bytes(),
            b"\\xff literally",
            b"plain",
        ];
        for name in names {
            let shown = bytes_text(name);
            assert!(!shown.contains('\n'));
            assert_eq!(unescape(&shown).expect("decodes").as_ref(), name, "{shown}");
        }
        assert_eq!(bytes_text(b"bad\xff.txt"), "bad\\xff.txt");
        assert_eq!(bytes_text(b"a\\b"), "a\\\\b");
        // Raw characters stand for themselves.
        assert_eq!(unescape("a\nb").expect("raw").as_ref(), b"a\nb");
        assert_eq!(unescape("\\u{e9}").expect("u").as_ref(), "é".as_bytes());
        for bad in [
            "a\\qb",
            "\\x4",
            "\\xzz",
            "\\u{110000}",
            "\\u{}",
            "\\u12",
            "end\\",
        ] {
            let error = unescape(bad).expect_err(bad);
            assert!(error.to_string().contains("is not an escape"), "{error}");
        }
        assert_eq!(unescape("ok\\q").expect_err("bad").at, 2);
    }

    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(count(1u64, "entry", "entries"), "1 entry");
        assert_eq!(count(0u64, "entry", "entries"), "0 entries");
        assert_eq!(count(2u32, "line", "lines"), "2 lines");
    }

    #[test]
    fn durations_keep_two_units() {
        assert_eq!(duration(42), "42s");
        assert_eq!(duration(125), "2m 5s");
        assert_eq!(duration(3 * 3600 + 60), "3h 1m");
        assert_eq!(duration(2 * 86_400 + 5 * 3600 + 7), "2d 5h");
    }
}
