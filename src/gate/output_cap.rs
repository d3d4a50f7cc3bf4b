//! The output cap: an answer larger than the limit is cut to fit and says so.
//!
//! Answers that get big are lists, so the cap shortens the largest top-level list in the
//! structured value (keeping it valid against the output schema, which declares the `truncated`
//! marker) and cuts the text rendering at a line boundary, ending it with a line that says what
//! was left out and how to get it.

use serde_json::{Map, Value, json};

use crate::tool::{Answer, json_len};

/// Why an answer could not be cut to fit.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct TooLarge {
    pub bytes: usize,
}

/// The size an answer counts against the cap: its structured JSON plus its text.
pub(super) fn answer_len(answer: &Answer) -> usize {
    json_len(&answer.structured) + answer.text.len()
}

/// Fits `answer` into `max` bytes, or explains that nothing sensible fits.
pub(super) fn cap(answer: Answer, max: usize, hint: &str) -> Result<(Answer, bool), TooLarge> {
    let total = answer_len(&answer);
    if total <= max {
        return Ok((answer, false));
    }
    let Answer { structured, text } = answer;
    let Value::Object(mut object) = structured else {
        return Err(TooLarge { bytes: total });
    };
    let Some((field, items)) = largest_list(&mut object) else {
        return Err(TooLarge { bytes: total });
    };
    let total_items = items.len();

    // The text rendering gets a quarter of the budget: it repeats what the structured value says,
    // compactly. The structured value gets the rest.
    let text_budget = max / 4;
    let structured_budget = max - text_budget;

    let marker = |returned: usize| json!({ "field": field, "returned": returned, "total": total_items, "hint": hint });
    let fits = |object: &mut Map<String, Value>, items: &[Value], keep: usize| {
        object.insert(field.clone(), Value::Array(items[..keep].to_vec()));
        object.insert("truncated".into(), marker(keep));
        json_len(&Value::Object(object.clone())) <= structured_budget
    };
    // Not even one item fits: an empty list would only mislead.
    if !fits(&mut object, &items, 1) {
        return Err(TooLarge { bytes: total });
    }
    // The largest prefix that fits, by binary search over its length.
    let (mut low, mut high) = (1, total_items);
    while low < high {
        let middle = (low + high).div_ceil(2);
        if fits(&mut object, &items, middle) {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    fits(&mut object, &items, low);

    let note = format!("… truncated: {low} of {total_items} {field} shown; {hint}");
    let text = cut_text(&text, text_budget.saturating_sub(note.len() + 1), &note);
    Ok((
        Answer {
            structured: Value::Object(object),
            text,
        },
        true,
    ))
}

/// Removes and returns the top-level array with the largest serialized size.
fn largest_list(object: &mut Map<String, Value>) -> Option<(String, Vec<Value>)> {
    let field = object
        .iter()
        .filter(|(_, value)| matches!(value, Value::Array(items) if !items.is_empty()))
        .max_by_key(|(_, value)| json_len(value))
        .map(|(key, _)| key.clone())?;
    match object.remove(&field) {
        Some(Value::Array(items)) => Some((field, items)),
        _ => None,
    }
}

/// Cuts `text` to at most `budget` bytes at a line (or, failing that, character) boundary and
/// appends `note` on its own line.
fn cut_text(text: &str, budget: usize, note: &str) -> String {
    let mut end = budget.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = &text[..end];
    let head = if end < text.len() {
        head.rfind('\n').map_or(head, |newline| &head[..newline])
    } else {
        head
    };
    if head.is_empty() {
        note.to_string()
    } else {
        format!("{head}\n{note}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(count: usize) -> Answer {
        let items: Vec<Value> = (0..count)
            .map(|i| json!({ "id": i, "name": format!("row-{i:05}") }))
            .collect();
        let text = (0..count)
            .map(|i| format!("{i} row-{i:05}"))
            .collect::<Vec<_>>()
            .join("\n");
        Answer {
            structured: json!({ "count": count, "rows": items }),
            text,
        }
    }

    #[test]
    fn small_answers_pass_untouched() {
        let (answer, truncated) = cap(rows(3), 4096, "use limit").expect("fits");
        assert!(!truncated);
        assert_eq!(answer.structured["rows"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn large_answers_are_cut_to_fit_and_marked() {
        let (answer, truncated) = cap(rows(10_000), 8192, "use `limit` and `cursor`").expect("cut");
        assert!(truncated);
        assert!(answer_len(&answer) <= 8192, "{}", answer_len(&answer));
        let marker = &answer.structured["truncated"];
        let returned = marker["returned"].as_u64().expect("returned");
        assert_eq!(marker["total"], 10_000);
        assert_eq!(marker["field"], "rows");
        assert!(returned > 0 && returned < 10_000);
        assert_eq!(
            answer.structured["rows"].as_array().map(Vec::len),
            Some(returned as usize)
        );
        assert!(
            answer.text.ends_with("; use `limit` and `cursor`"),
            "{}",
            answer.text
        );
        assert!(answer.text.contains("… truncated:"));
    }

    #[test]
    fn answers_without_a_list_cannot_be_cut() {
        let answer = Answer {
            structured: json!({ "blob": "x".repeat(10_000) }),
            text: "x".repeat(10_000),
        };
        assert!(cap(answer, 4096, "narrow it").is_err());
    }
}
