//! Refused requests are recorded, but a flood of them is summarised instead of written one by
//! one, so that it cannot fill the log and rotate the records of real actions away.
//!
//! Only refusals that cost the sender nothing are counted: refused requests (event `request` or
//! `auth`: a bad header, a bad credential, an oversized body, invalid JSON, an oversized header)
//! and calls refused by the rate limit (an identity past its budget can send as fast as it
//! likes). Tool calls that were let through the rate limit — allowed, denied or failed — are
//! always written: the rate limit bounds them. Within a window of [`WINDOW`], each source (the caller's identity
//! when it is known, else its address without the port) gets [`PER_SOURCE`] records of each kind
//! and all sources together [`OVERALL`]; the rest are counted, and one `suppressed` record per
//! source and kind says how many there were once the window is over. At most [`SOURCES`] sources
//! are counted apart per window; beyond that they share one count. So a flood at any rate adds
//! at most `OVERALL + SOURCES + 1` records (≤ 4 KiB each, see `bound`) a minute: with the default
//! 64 MiB × 6 files that is more than two days of flooding before the first record rotates away.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};

use super::{Decision, Entry, Event};

/// The window over which refusals are counted.
pub(super) const WINDOW: Duration = Duration::from_secs(60);
/// Records written per source and kind of refusal per window.
pub(super) const PER_SOURCE: u32 = 5;
/// Records of refusals written per window, all sources together.
pub(super) const OVERALL: u32 = 60;
/// Sources counted apart per window.
pub(super) const SOURCES: usize = 64;

/// Whether a record is written now.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Write,
    /// Counted; a summary follows when the window ends.
    Counted,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    source: String,
    outcome: String,
}

struct Tally {
    written: u32,
    suppressed: u64,
    /// A refusal of the kind, kept to describe the ones suppressed.
    sample: Entry,
}

/// Counts refusals per window.
pub(super) struct FloodGate {
    started: Instant,
    started_at: String,
    written: u32,
    tallies: HashMap<Key, Tally>,
}

impl Default for FloodGate {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            started_at: now(),
            written: 0,
            tallies: HashMap::new(),
        }
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Whether `entry` documents a refusal a flood can repeat at no cost: a refused request, or a
/// call past its identity's rate limit.
fn is_refused_request(entry: &Entry) -> bool {
    matches!(entry.event, Some(Event::Request | Event::Auth))
        || entry.decision == Some(Decision::RateLimited)
}

/// The kind of refusal: its outcome and the start of its reason (an expired token and a revoked
/// one are different kinds; a header's varying text is not).
fn kind_of(entry: &Entry) -> String {
    let reason: String = entry
        .detail
        .as_deref()
        .unwrap_or("")
        .chars()
        .take(40)
        .collect();
    format!("{}: {reason}", entry.outcome)
}

/// Who sent it: the identity when the request was authenticated, else the address without its
/// port (each connection has a new port), else the transport.
fn source_of(entry: &Entry) -> String {
    if let Some(identity) = &entry.identity {
        return identity.clone();
    }
    match &entry.remote {
        Some(remote) => match remote.parse::<std::net::SocketAddr>() {
            Ok(address) => address.ip().to_string(),
            // `pid N` on the unix socket: every process is its own source; the uid would be
            // better, but the identity already carries it when the request got that far.
            Err(_) => remote.clone(),
        },
        None => entry.transport.clone().unwrap_or_default(),
    }
}

impl FloodGate {
    /// Whether `entry` is written now or counted.
    pub(super) fn admit(&mut self, entry: &Entry, now: Instant) -> Verdict {
        if !is_refused_request(entry) {
            return Verdict::Write;
        }
        if now.duration_since(self.started) >= WINDOW && self.tallies.is_empty() {
            self.restart(now);
        }
        let mut key = Key {
            source: source_of(entry),
            outcome: kind_of(entry),
        };
        if !self.tallies.contains_key(&key) && self.tallies.len() >= SOURCES {
            key.source = "(other sources)".into();
        }
        let overall_left = self.written < OVERALL;
        let tally = self.tallies.entry(key).or_insert_with(|| Tally {
            written: 0,
            suppressed: 0,
            // Bounded: a flood's sample must not hold the flood's megabytes.
            sample: super::bound::bounded(entry).into_owned(),
        });
        if tally.written < PER_SOURCE && overall_left {
            tally.written += 1;
            self.written += 1;
            Verdict::Write
        } else {
            tally.suppressed += 1;
            Verdict::Counted
        }
    }

    /// When the window is over: one summary per source and kind that had refusals counted, and a
    /// new window.
    pub(super) fn due_summaries(&mut self, now: Instant) -> Vec<Entry> {
        if now.duration_since(self.started) < WINDOW {
            return Vec::new();
        }
        let summaries = self.all_summaries();
        self.restart(now);
        summaries
    }

    /// Summaries of everything counted so far (the window is left as it is).
    pub(super) fn all_summaries(&mut self) -> Vec<Entry> {
        let until = now();
        let mut summaries: Vec<Entry> = self
            .tallies
            .drain()
            .filter(|(_, tally)| tally.suppressed > 0)
            .map(|(key, tally)| {
                let mut summary = tally.sample;
                summary.suppressed = Some(tally.suppressed);
                summary.detail = Some(format!(
                    "{} more refusals like this ({}) from {} between {} and {until} were counted, \
                     not written one by one; the first: {}",
                    tally.suppressed,
                    key.outcome,
                    key.source,
                    self.started_at,
                    summary.detail.as_deref().unwrap_or("")
                ));
                summary
            })
            .collect();
        summaries.sort_by(|a, b| a.detail.cmp(&b.detail));
        summaries
    }

    fn restart(&mut self, now: Instant) {
        self.started = now;
        self.started_at = self::now();
        self.written = 0;
        self.tallies.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(remote: &str) -> Entry {
        Entry {
            event: Some(Event::Request),
            decision: Some(Decision::Refused),
            outcome: "forbidden".into(),
            remote: Some(remote.into()),
            detail: Some("Origin not allowed".into()),
            ..Entry::default()
        }
    }

    #[test]
    fn a_flood_is_summarised_per_source() {
        let mut gate = FloodGate::default();
        let start = Instant::now();
        let written = (0..1100)
            .filter(|n| {
                gate.admit(&refusal(&format!("127.0.0.1:{}", 40000 + n)), start) == Verdict::Write
            })
            .count();
        assert_eq!(written, PER_SOURCE as usize);
        assert_eq!(
            gate.admit(&refusal("10.0.0.9:1"), start),
            Verdict::Write,
            "another source still gets through"
        );
        let call = Entry {
            event: Some(Event::Call),
            outcome: "ok".into(),
            ..Entry::default()
        };
        assert_eq!(
            gate.admit(&call, start),
            Verdict::Write,
            "tool calls are never counted"
        );
        assert!(
            gate.due_summaries(start + Duration::from_secs(1))
                .is_empty()
        );
        let summaries = gate.due_summaries(start + WINDOW);
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].suppressed, Some(1100 - u64::from(PER_SOURCE)));
        assert!(
            summaries[0]
                .detail
                .as_deref()
                .unwrap_or("")
                .contains("from 127.0.0.1")
        );
    }

    #[test]
    fn calls_past_the_rate_limit_are_summarised_too() {
        let mut gate = FloodGate::default();
        let start = Instant::now();
        let limited = Entry {
            event: Some(Event::Call),
            decision: Some(Decision::RateLimited),
            outcome: "rate_limited".into(),
            identity: Some("token:viewer".into()),
            detail: Some("rate limit: token:viewer may make 60 calls a minute".into()),
            ..Entry::default()
        };
        let written = (0..75_000)
            .filter(|_| gate.admit(&limited, start) == Verdict::Write)
            .count();
        assert_eq!(written, PER_SOURCE as usize);
        let summaries = gate.due_summaries(start + WINDOW);
        assert_eq!(
            summaries[0].suppressed,
            Some(75_000 - u64::from(PER_SOURCE))
        );
    }

    #[test]
    fn many_sources_share_one_overall_budget() {
        let mut gate = FloodGate::default();
        let start = Instant::now();
        let written = (0..10_000u32)
            .filter(|n| {
                let address = format!("127.{}.{}.{}:80", n >> 16, (n >> 8) & 255, n & 255);
                gate.admit(&refusal(&address), start) == Verdict::Write
            })
            .count();
        assert_eq!(written, OVERALL as usize);
        let summaries = gate.due_summaries(start + WINDOW);
        assert!(summaries.len() <= SOURCES + 1, "{}", summaries.len());
        let counted: u64 = summaries.iter().filter_map(|s| s.suppressed).sum();
        assert_eq!(counted + u64::from(OVERALL), 10_000);
    }
}
