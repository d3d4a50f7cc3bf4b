//! Pages of long lists (processes, connections): a `limit` with a small default and a hard
//! maximum, and an opaque `cursor` for the next page.
//!
//! A cursor is an offset into the list as sorted at the time of the next call. Processes and
//! sockets come and go between calls, so a row may repeat or be skipped across pages; each
//! page is exact for the moment it was read. An absurd limit is not an error: it is reduced to
//! the maximum, and the answer says so.

use schemars::JsonSchema;
use serde::Serialize;

use crate::render;
use crate::tool::{OutputCap, ToolError};

/// Bytes of a paged answer that are not its rows (totals, cursor, notes, the envelope).
const PAGE_OVERHEAD: u64 = 4096;

/// Where a page sits in the whole list: every paged answer carries it, flattened (`total`,
/// `next_cursor`), and ends its text with its [`footer`](PageInfo::footer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub(crate) struct PageInfo {
    /// Rows matching the request, across all pages.
    pub total: usize,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl PageInfo {
    /// The last lines of a paged answer's text, each in parentheses so that no one reads it
    /// as a row: when the rows shown are not the whole list, how many of how many and where
    /// the next page starts; then the answer's notes, each a sentence.
    pub(crate) fn footer(
        &self,
        shown: usize,
        (singular, plural): (&str, &str),
        notes: &[String],
    ) -> Vec<String> {
        let mut lines = Vec::new();
        if shown < self.total {
            let mut line = format!(
                "({shown} of {}",
                render::count(self.total, singular, plural)
            );
            if let Some(cursor) = &self.next_cursor {
                line.push_str(&format!("; more with cursor {cursor}"));
            }
            line.push(')');
            lines.push(line);
        }
        lines.extend(
            notes
                .iter()
                .map(|note| format!("({})", render::sentence(note))),
        );
        lines
    }
}

/// What a caller asked for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageRequest {
    pub limit: usize,
    pub offset: usize,
    /// Said in the answer when the limit was reduced.
    pub note: Option<String>,
}

impl PageRequest {
    /// `limit` as given (any integer), `cursor` as a previous answer's `next_cursor`.
    pub(crate) fn new(
        limit: Option<i64>,
        cursor: Option<&str>,
        default: usize,
        max: usize,
    ) -> Result<Self, ToolError> {
        let (limit, note) = match limit {
            None => (default, None),
            Some(asked) if asked < 1 => {
                return Err(ToolError::invalid_arguments(format!(
                    "limit {asked} is out of range: give at least 1 (default {default}, at most \
                     {max})"
                )));
            }
            Some(asked) if asked as u64 > max as u64 => (
                max,
                Some(format!(
                    "limit {asked} is more than one page holds: gave at most {max}; use \
                     next_cursor for the rest"
                )),
            ),
            Some(asked) => (asked as usize, None),
        };
        let offset = match cursor {
            None => 0,
            Some(cursor) => decode(cursor).ok_or_else(|| {
                ToolError::invalid_arguments(format!(
                    "cursor `{cursor}` is not one this tool gave; leave it out to start from the \
                     first page"
                ))
            })?,
        };
        Ok(Self {
            limit,
            offset,
            note,
        })
    }

    /// Shortens a page whose answer would not fit the output cap, so that the gate never has to
    /// cut it (a cut page's next_cursor would skip the rows cut): keeps the rows that fit
    /// (at least one), points next_cursor after the last one kept, and says so.
    pub(crate) fn fit<T: Serialize>(
        &self,
        rows: &mut Vec<T>,
        page: &mut PageInfo,
        cap: OutputCap,
    ) -> Option<String> {
        // A row appears twice in an answer: in the structured list and as a text line.
        let budget = cap.max_bytes.saturating_sub(PAGE_OVERHEAD);
        let mut used = 0u64;
        let kept = rows
            .iter()
            .take_while(|row| {
                used += 2 * serde_json::to_vec(row).map_or(0, |json| json.len() as u64) + 16;
                used <= budget
            })
            .count()
            .max(1);
        if kept >= rows.len() {
            return None;
        }
        let asked = rows.len();
        rows.truncate(kept);
        page.next_cursor = Some(encode(self.offset + kept));
        Some(format!(
            "the page holds {kept} of the {asked} rows asked for, as many as fit \
             limits.max_output_bytes; next_cursor continues after them"
        ))
    }

    /// Cuts this page out of the whole sorted list: the rows, and where they sit in it (the
    /// cursor for the next page when rows remain).
    pub(crate) fn take<T>(&self, rows: Vec<T>) -> (Vec<T>, PageInfo) {
        let total = rows.len();
        let end = self.offset.saturating_add(self.limit).min(total);
        let next_cursor = (end < total).then(|| encode(end));
        let page = rows
            .into_iter()
            .skip(self.offset)
            .take(end.saturating_sub(self.offset));
        (page.collect(), PageInfo { total, next_cursor })
    }
}

/// Cursors look like `o40`: short, and clearly not a row count a caller should edit.
fn encode(offset: usize) -> String {
    format!("o{offset}")
}

fn decode(cursor: &str) -> Option<usize> {
    cursor.strip_prefix('o')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_reduce_and_refuse() {
        let page = |limit| PageRequest::new(limit, None, 20, 500);
        assert_eq!(page(None).expect("default").limit, 20);
        let reduced = page(Some(1_000_000)).expect("reduced");
        assert_eq!(reduced.limit, 500);
        assert!(
            reduced
                .note
                .expect("said so")
                .starts_with("limit 1000000 is more than")
        );
        let refused = page(Some(-5)).expect_err("refused");
        assert_eq!(
            refused.message,
            "limit -5 is out of range: give at least 1 (default 20, at most 500)"
        );
        assert!(page(Some(0)).is_err());
    }

    #[test]
    fn cursors_walk_the_list_to_its_end() {
        let first = PageRequest::new(Some(2), None, 20, 500).expect("first");
        let (rows, page) = first.take(vec![1, 2, 3, 4, 5]);
        assert_eq!(
            (rows, page.next_cursor.as_deref()),
            (vec![1, 2], Some("o2"))
        );
        let last = PageRequest::new(Some(10), Some("o2"), 20, 500).expect("next");
        let (rows, page) = last.take(vec![1, 2, 3, 4, 5]);
        assert_eq!(
            (rows, page.total, page.next_cursor),
            (vec![3, 4, 5], 5, None)
        );
        let bad = PageRequest::new(None, Some("40"), 20, 500).expect_err("foreign cursor");
        assert!(
            bad.message
                .starts_with("cursor `40` is not one this tool gave")
        );
    }
}
