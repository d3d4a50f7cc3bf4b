//! Rates (CPU %, bytes/s, IOPS) need two readings of kernel counters some time apart. A
//! [`Sampler`] takes readings in the background, but only while someone has asked recently, so
//! an idle server does no work; and a first question never waits for a second reading — it gets
//! the one reading there is, and the tool answers from cumulative counters (since boot, since the
//! process started) until the background readings arrive.
//!
//! Each domain samples its own data with its own `Sampler`; this module is only the mechanism.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Serialize;

use crate::config::SamplerConfig;

/// How a rate in an answer was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Basis {
    /// Over the last `window_seconds`, between two background readings.
    Interval,
    /// Averaged since the host booted: the first answer after a quiet spell. Ask again in a
    /// second for current figures.
    SinceBoot,
}

/// Readings closer together than this measure noise, not a rate.
pub(crate) const SHORTEST_WINDOW: Duration = Duration::from_millis(100);

/// One reading and when it was taken.
#[derive(Debug)]
pub(crate) struct Reading<T> {
    pub at: Instant,
    pub value: T,
}

/// What a tool gets: the latest reading, and the one before it when there is one.
#[derive(Debug)]
pub(crate) struct Readings<T> {
    pub previous: Option<Arc<Reading<T>>>,
    pub latest: Arc<Reading<T>>,
}

impl<T> Readings<T> {
    /// The time between the two readings, when there are two far enough apart to measure a
    /// rate over.
    pub(crate) fn window(&self) -> Option<Duration> {
        let previous = self.previous.as_ref()?;
        let window = self.latest.at.saturating_duration_since(previous.at);
        (window >= SHORTEST_WINDOW).then_some(window)
    }

    /// The earlier reading and the time since it, when rates can be measured over an interval.
    pub(crate) fn earlier(&self) -> Option<(Duration, &T)> {
        Some((self.window()?, &self.previous.as_ref()?.value))
    }

    /// The basis and window (seconds, two decimals) an answer built from these readings has.
    pub(crate) fn basis(&self) -> (Basis, Option<f64>) {
        match self.window() {
            Some(window) => (
                Basis::Interval,
                Some((window.as_secs_f64() * 100.0).round() / 100.0),
            ),
            None => (Basis::SinceBoot, None),
        }
    }
}

struct State<T> {
    previous: Option<Arc<Reading<T>>>,
    latest: Option<Arc<Reading<T>>>,
    last_asked: Instant,
    running: bool,
}

type Collect<T> = dyn Fn() -> Result<T, String> + Send + Sync;

/// Takes readings of one kind of data on demand.
pub(crate) struct Sampler<T: Send + Sync + 'static> {
    collect: Arc<Collect<T>>,
    interval: Duration,
    idle_after: Duration,
    state: Arc<Mutex<State<T>>>,
}

impl<T: Send + Sync + 'static> Sampler<T> {
    /// `collect` takes one reading: in the background on a blocking thread, and on the
    /// caller's thread when no recent reading is at hand.
    pub(crate) fn new(
        config: &SamplerConfig,
        collect: impl Fn() -> Result<T, String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            collect: Arc::new(collect),
            interval: Duration::from_millis(config.interval_ms.get()),
            idle_after: Duration::from_secs(config.idle_after_seconds.get()),
            state: Arc::new(Mutex::new(State {
                previous: None,
                latest: None,
                last_asked: Instant::now(),
                running: false,
            })),
        }
    }

    /// The readings a tool answers from. Collects on the caller's thread when no reading is
    /// recent, so `collect` should be quick (procfs reads are). Starts the background readings (inside a Tokio runtime) when they are
    /// not running.
    pub(crate) fn readings(&self) -> Result<Readings<T>, String> {
        let now = Instant::now();
        let recent = {
            let mut state = self.lock();
            state.last_asked = now;
            let recent = state
                .latest
                .as_ref()
                .filter(|latest| now.saturating_duration_since(latest.at) <= self.interval * 2)
                .cloned();
            if !state.running && tokio::runtime::Handle::try_current().is_ok() {
                state.running = true;
                self.start();
            }
            recent.map(|latest| Readings {
                previous: state.previous.clone(),
                latest,
            })
        };
        if let Some(readings) = recent {
            return Ok(readings);
        }
        // Nothing recent: read now. The reading before, however old, still gives a rate over
        // a longer window.
        let value = (self.collect)()?;
        let reading = Arc::new(Reading { at: now, value });
        let mut state = self.lock();
        let previous = state.latest.replace(Arc::clone(&reading));
        state.previous = previous.clone();
        Ok(Readings {
            previous,
            latest: reading,
        })
    }

    /// How often background readings are taken.
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads every interval until nobody has asked for `idle_after`.
    fn start(&self) {
        let collect = Arc::clone(&self.collect);
        let state = Arc::clone(&self.state);
        let (interval, idle_after) = (self.interval, self.idle_after);
        tokio::spawn(async move {
            // The caller has just taken a reading: the next is due one interval later.
            let mut ticker =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                {
                    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                    if state.last_asked.elapsed() > idle_after {
                        state.running = false;
                        return;
                    }
                }
                let collect = Arc::clone(&collect);
                let taken = tokio::task::spawn_blocking(move || (collect)()).await;
                match taken {
                    Ok(Ok(value)) => {
                        let reading = Arc::new(Reading {
                            at: Instant::now(),
                            value,
                        });
                        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                        state.previous = state.latest.replace(reading);
                    }
                    Ok(Err(error)) => tracing::debug!(%error, "a background reading failed"),
                    Err(error) => tracing::debug!(%error, "a background reading did not finish"),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn counting(interval_ms: u64, idle_after_seconds: u64) -> (Sampler<u64>, Arc<AtomicU64>) {
        let text = format!(
            "[sampler]\ninterval_ms = {interval_ms}\nidle_after_seconds = {idle_after_seconds}\n"
        );
        let config = crate::config::parse(&text, "test").expect("config").sampler;
        let count = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&count);
        let sampler = Sampler::new(&config, move || Ok(counter.fetch_add(1, Ordering::SeqCst)));
        (sampler, count)
    }

    #[test]
    fn a_first_question_gets_one_reading_at_once() {
        let (sampler, count) = counting(1000, 60);
        let readings = sampler.readings().expect("reading");
        assert!(readings.previous.is_none());
        assert_eq!(readings.latest.value, 0);
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readings_arrive_in_the_background_while_asked_and_stop_when_not() {
        let (sampler, count) = counting(200, 1);
        let sampler = Arc::new(sampler);
        let first = tokio::task::spawn_blocking({
            let sampler = Arc::clone(&sampler);
            move || sampler.readings().expect("reading")
        })
        .await
        .expect("join");
        assert!(first.previous.is_none());
        tokio::time::sleep(Duration::from_millis(650)).await;
        let later = sampler.readings().expect("reading");
        assert!(
            later.previous.is_some(),
            "a second reading came in the background"
        );
        let window = later.window().expect("window");
        assert!(window >= Duration::from_millis(150) && window <= Duration::from_millis(450));
        // Nobody asks for more than idle_after: the readings stop.
        tokio::time::sleep(Duration::from_millis(1600)).await;
        let stopped_at = count.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            count.load(Ordering::SeqCst),
            stopped_at,
            "no readings while idle"
        );
    }
}
