//! Times as callers write them: RFC 3339, or a duration ago (`30s`, `10m`, `2h`, `1d`).

use crate::tool::ToolError;

/// Seconds since the epoch for an RFC 3339 time or a duration ago.
pub(crate) fn parse_time(text: &str, now: i64) -> Result<i64, ToolError> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp());
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    // Before the epoch is no time a log or an event can have.
    match number.parse::<i64>() {
        Ok(count) if seconds > 0 && count >= 0 && count.saturating_mul(seconds) <= now => {
            Ok(now - count * seconds)
        }
        _ => Err(ToolError::invalid_arguments(format!(
            "`{text}` is not a time: give RFC 3339 (2026-11-24T10:00:00Z) or a duration ago \
             (30s, 10m, 2h, 1d)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_durations_ago() {
        let now = 1_000_000;
        assert_eq!(parse_time("10m", now).expect("valid"), now - 600);
        assert_eq!(parse_time("2h", now).expect("valid"), now - 7200);
        assert_eq!(parse_time("1d", now).expect("valid"), now - 86_400);
        assert_eq!(
            parse_time("1970-01-02T00:00:00Z", now).expect("valid"),
            86_400
        );
        for bad in ["", "10", "m", "-5m", "yesterday", "10w", "99999999d"] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
    }
}
