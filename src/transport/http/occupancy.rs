//! Which open connections are doing something, so that a full server makes room by closing one
//! that is only waiting instead of turning the newcomer away.
//!
//! A slowloris holds connections by sending a request's headers slowly; a patient one sends a
//! request and then sits on the keep-alive connection. Either way the connection is *waiting*:
//! no request is being answered on it. At `http.max_connections` the connection loop closes the
//! one that has waited longest and admits the new one. A client that sends its request at once
//! (every real client) is waiting for microseconds, so it is never the one closed; the flood
//! evicts itself. A request being answered, or an event stream (`GET` answered with
//! `text/event-stream`), is never closed this way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Extension;
use axum::extract::Request;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use tokio_util::sync::CancellationToken;

const WAITING: u8 = 0;
const ANSWERING: u8 = 1;
const STREAMING: u8 = 2;

/// One connection's state.
#[derive(Debug)]
pub struct Occupant {
    state: AtomicU8,
    /// When it began waiting, in milliseconds since the loop started.
    waiting_since: AtomicU64,
    /// Fired to close the connection.
    pub evicted: CancellationToken,
}

/// The open connections of one listener.
#[derive(Debug)]
pub struct Occupancy {
    started: Instant,
    next_id: AtomicU64,
    occupants: Mutex<HashMap<u64, Arc<Occupant>>>,
}

impl Default for Occupancy {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            next_id: AtomicU64::new(0),
            occupants: Mutex::new(HashMap::new()),
        }
    }
}

impl Occupancy {
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A new connection, waiting for its first request; forgotten when the guard drops.
    pub fn admit(self: &Arc<Self>) -> (Arc<Occupant>, Leaving) {
        let occupant = Arc::new(Occupant {
            state: AtomicU8::new(WAITING),
            waiting_since: AtomicU64::new(self.now()),
            evicted: CancellationToken::new(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.occupants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Arc::clone(&occupant));
        (
            occupant,
            Leaving {
                occupancy: Arc::clone(self),
                id,
            },
        )
    }

    /// Closes the connection that has waited longest, if one is waiting. Returns whether one was.
    pub fn evict_the_longest_waiting(&self) -> bool {
        let occupants = self.occupants.lock().unwrap_or_else(|p| p.into_inner());
        let victim = occupants
            .values()
            .filter(|occupant| {
                occupant.state.load(Ordering::Acquire) == WAITING
                    && !occupant.evicted.is_cancelled()
            })
            .min_by_key(|occupant| occupant.waiting_since.load(Ordering::Acquire));
        match victim {
            Some(victim) => {
                victim.evicted.cancel();
                true
            }
            None => false,
        }
    }
}

/// Forgets a connection when it ends.
pub struct Leaving {
    occupancy: Arc<Occupancy>,
    id: u64,
}

impl Drop for Leaving {
    fn drop(&mut self) {
        self.occupancy
            .occupants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

/// The layer that marks a connection answering while a request is, and waiting again after
/// (streaming, for an event stream).
pub async fn track(
    Extension(occupant): Extension<Arc<Occupant>>,
    Extension(occupancy): Extension<Arc<Occupancy>>,
    request: Request,
    next: Next,
) -> Response {
    occupant.state.store(ANSWERING, Ordering::Release);
    let may_stream = request.method() == Method::GET;
    let response = next.run(request).await;
    let streaming = may_stream
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
    if streaming {
        occupant.state.store(STREAMING, Ordering::Release);
    } else {
        occupant
            .waiting_since
            .store(occupancy.now(), Ordering::Release);
        occupant.state.store(WAITING, Ordering::Release);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_waiting_connection_is_the_one_closed() {
        let occupancy = Arc::new(Occupancy::default());
        let (first, _a) = occupancy.admit();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let (second, _b) = occupancy.admit();
        let (busy, _c) = occupancy.admit();
        first.state.store(ANSWERING, Ordering::Release);
        busy.state.store(STREAMING, Ordering::Release);
        assert!(occupancy.evict_the_longest_waiting());
        assert!(second.evicted.is_cancelled() && !first.evicted.is_cancelled());
        assert!(
            !occupancy.evict_the_longest_waiting(),
            "nobody else is waiting"
        );
        drop(_b);
        assert_eq!(occupancy.occupants.lock().expect("lock").len(), 2);
    }
}
