//! Keeping a file's text within the gate's output cap.
//!
//! The cap shortens lists, but a file's text is one string that appears twice in an answer (the
//! structured `content` and the text rendering), and JSON escaping can grow it further. So the
//! read itself is bounded: first by an estimate, and when the answer still does not fit, read
//! again with a proportionally smaller budget. The caller pages on from where the answer ends.

use serde::Serialize;

use crate::tool::{OutputCap, Render, ToolError};

/// Room left for everything in an answer that is not the file's text.
const FIELDS_ALLOWANCE: u64 = 1024;

/// The largest budget to try first: the text twice, plus the other fields.
pub(crate) fn first_budget(max_bytes: u64, max_output_bytes: u64) -> u64 {
    max_bytes
        .min(max_output_bytes.saturating_sub(FIELDS_ALLOWANCE) / 2)
        .max(1)
}

/// Runs `read` with shrinking byte budgets (starting at [`first_budget`]) until its answer fits
/// `max_output_bytes`; returns the answer and the budget it was read with.
pub(crate) fn read_fitting<T: Serialize + Render>(
    max_bytes: u64,
    max_output_bytes: u64,
    mut read: impl FnMut(u64) -> Result<T, ToolError>,
) -> Result<(T, u64), ToolError> {
    let mut budget = first_budget(max_bytes, max_output_bytes);
    loop {
        let answer = read(budget)?;
        let size = OutputCap::measure(&answer);
        if size <= max_output_bytes || budget == 1 {
            return Ok((answer, budget));
        }
        // Shrink in proportion, with a margin; always by at least one byte.
        let shrunk = (u128::from(budget) * u128::from(max_output_bytes) * 9
            / (u128::from(size) * 10)) as u64;
        budget = shrunk.clamp(1, budget - 1);
    }
}

/// The note for an answer whose read the output cap held to `budget` bytes of the
/// `max_bytes` asked, for a caller to say only when that budget is what stopped the read.
pub(crate) fn held_note(budget: u64, max_bytes: u64, max_output_bytes: u64) -> String {
    format!(
        "held to {budget} of the {max_bytes} bytes asked so the answer fits \
         limits.max_output_bytes ({max_output_bytes}); continue from where it ends"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Text(String);
    impl Render for Text {
        fn render_text(&self) -> String {
            self.0.clone()
        }
    }

    #[test]
    fn escaping_heavy_text_is_read_again_smaller_until_it_fits() {
        // Each control byte becomes six JSON bytes: the first estimate cannot fit.
        let (answer, budget) = read_fitting(1 << 20, 4096, |budget| {
            Ok(Text("\u{1}".repeat(budget as usize)))
        })
        .expect("fits");
        assert!(OutputCap::measure(&answer) <= 4096);
        assert!(budget < first_budget(1 << 20, 4096));
        assert!(budget > 400, "not shrunk further than needed: {budget}");
    }

    #[test]
    fn plain_text_fits_at_the_first_budget() {
        let (_, budget) = read_fitting(100_000, 65536, |budget| {
            Ok(Text("a".repeat(budget as usize)))
        })
        .expect("fits");
        assert_eq!(budget, (65536 - 1024) / 2);
        assert_eq!(first_budget(10, 65536), 10);
    }
}
