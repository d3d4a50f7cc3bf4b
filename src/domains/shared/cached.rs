//! A value kept for a while: facts that change rarely (hardware inventory) or are costly to
//! gather on every call, re-read once they are older than a bound.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) struct Cached<T> {
    for_how_long: Duration,
    kept: Mutex<Option<(Instant, Arc<T>)>>,
}

impl<T> Cached<T> {
    pub(crate) fn new(for_how_long: Duration) -> Self {
        Self {
            for_how_long,
            kept: Mutex::new(None),
        }
    }

    /// The kept value while it is fresh, else `read()`'s, kept from now.
    pub(crate) fn get_or_read(&self, read: impl FnOnce() -> T) -> Arc<T> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, value)) = kept.as_ref()
            && at.elapsed() < self.for_how_long
        {
            return Arc::clone(value);
        }
        let value = Arc::new(read());
        *kept = Some((Instant::now(), Arc::clone(&value)));
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_value_is_reused_and_a_stale_one_read_again() {
        let fresh = Cached::new(Duration::from_secs(60));
        assert_eq!(*fresh.get_or_read(|| 1), 1);
        assert_eq!(*fresh.get_or_read(|| 2), 1);
        let stale = Cached::new(Duration::ZERO);
        assert_eq!(*stale.get_or_read(|| 1), 1);
        assert_eq!(*stale.get_or_read(|| 2), 2);
    }
}
