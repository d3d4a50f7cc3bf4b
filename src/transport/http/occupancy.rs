//! Which open connections are doing something, so that a full server makes room by closing one
//! that is only waiting instead of turning the newcomer away.
//!
//! A slowloris holds connections by sending a request's headers slowly, or its body; a patient
//! one sends a request and then sits on the keep-alive connection. Either way the connection is
//! *waiting*: no request is being answered on it (a body still arriving counts as waiting; the
//! body layer marks the connection answering once the body is in). At `http.max_connections`
//! the connection loop closes the one that has waited longest and admits the new one. A client
//! that sends its request at once (every real client) waits for microseconds, so it is never the
//! one closed; the flood evicts itself.
//!
//! A request being answered is never closed. Event streams (`GET` answered with
//! `text/event-stream`) are long by nature, so they are closed only when nothing is waiting, and
//! then fairly: the oldest stream of the identity that holds the most of them (one identity's
//! hundred streams cannot keep another identity's one out).

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
pub(super) struct Occupant {
    state: AtomicU8,
    /// Who authenticated on it (for a fair choice among event streams).
    identity: Mutex<Option<String>>,
    /// When it began waiting, in milliseconds since the loop started.
    waiting_since: AtomicU64,
    /// Fired to close the connection.
    pub evicted: CancellationToken,
}

/// The open connections of one listener.
#[derive(Debug)]
pub(super) struct Occupancy {
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
    pub(super) fn admit(self: &Arc<Self>) -> (Arc<Occupant>, Leaving) {
        let occupant = Arc::new(Occupant {
            state: AtomicU8::new(WAITING),
            identity: Mutex::new(None),
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

    /// Closes the connection that has waited longest; if none is waiting, the oldest event
    /// stream of the identity holding the most streams (when it holds more than one). Returns
    /// whether one was closed.
    pub(super) fn evict_the_longest_waiting(&self) -> bool {
        let occupants = self.occupants.lock().unwrap_or_else(|p| p.into_inner());
        let open = || {
            occupants
                .values()
                .filter(|occupant| !occupant.evicted.is_cancelled())
        };
        let waiting = open()
            .filter(|occupant| occupant.state.load(Ordering::Acquire) == WAITING)
            .min_by_key(|occupant| occupant.waiting_since.load(Ordering::Acquire));
        let victim = waiting.or_else(|| {
            let mut streams: HashMap<String, Vec<&Arc<Occupant>>> = HashMap::new();
            for occupant in open().filter(|o| o.state.load(Ordering::Acquire) == STREAMING) {
                let identity = occupant
                    .identity
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
                    .unwrap_or_default();
                streams.entry(identity).or_default().push(occupant);
            }
            let (_, busiest) = streams.into_iter().max_by_key(|(_, held)| held.len())?;
            (busiest.len() > 1).then_some(())?;
            busiest
                .into_iter()
                .min_by_key(|occupant| occupant.waiting_since.load(Ordering::Acquire))
        });
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
pub(super) struct Leaving {
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

impl Occupant {
    /// The request's body is in: from now on it is being answered (never closed to make room).
    pub(super) fn answering(&self) {
        self.state.store(ANSWERING, Ordering::Release);
    }

    /// The identity that authenticated on this connection.
    pub(super) fn identify(&self, identity: String) {
        *self.identity.lock().unwrap_or_else(|p| p.into_inner()) = Some(identity);
    }
}

/// The layer that follows a connection's requests: still waiting while the headers are in but
/// the body is not (the body layer calls [`Occupant::answering`]), waiting again after the answer
/// (or streaming, for an event stream).
pub(super) async fn track(
    Extension(occupant): Extension<Arc<Occupant>>,
    Extension(occupancy): Extension<Arc<Occupancy>>,
    request: Request,
    next: Next,
) -> Response {
    let may_stream = request.method() == Method::GET;
    let response = next.run(request).await;
    let streaming = may_stream
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
    if streaming {
        occupant
            .waiting_since
            .store(occupancy.now(), Ordering::Release);
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

    #[test]
    fn when_nothing_waits_the_busiest_identitys_oldest_stream_is_closed() {
        let occupancy = Arc::new(Occupancy::default());
        let mut held = Vec::new();
        for identity in ["token:hog", "token:hog", "token:hog", "token:other"] {
            let (occupant, leaving) = occupancy.admit();
            occupant.identify(identity.into());
            occupant.state.store(STREAMING, Ordering::Release);
            held.push((occupant, leaving));
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert!(occupancy.evict_the_longest_waiting());
        assert!(held[0].0.evicted.is_cancelled(), "the hog's oldest stream");
        assert!(occupancy.evict_the_longest_waiting());
        assert!(held[1].0.evicted.is_cancelled());
        // One stream each now: nobody is closed to make room.
        assert!(!occupancy.evict_the_longest_waiting());
        assert!(!held[3].0.evicted.is_cancelled());
    }
}
