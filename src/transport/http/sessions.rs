//! 2025-era sessions (`Mcp-Session-Id`): each belongs to the identity that opened it, and they
//! are bounded.
//!
//! rmcp keeps the sessions; this layer keeps who owns each, so that:
//! - a request carrying another identity's session id gets 404, as an unknown session would
//!   (the id is no capability: a viewer holding an admin's id can neither use nor `DELETE` it);
//! - an identity opens at most `http.max_sessions_per_identity` sessions and all together at most
//!   `http.max_sessions`; past either, `initialize` gets 429 with what to do, while the sessions
//!   already open keep working;
//! - a session unused for `http.session_idle_seconds` is closed (rmcp's own idle timeout is the
//!   same, as a second lock).
//!
//! Stateless 2026-07-28 requests carry no session and pass untouched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::ErrorCode;
use rmcp::transport::streamable_http_server::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use tokio_util::sync::CancellationToken;

use super::body::DecodedRequest;
use super::reply;
use crate::access::Caller;
use crate::audit::{AuditLog, Entry};
use crate::config::HttpConfig;

const SESSION_HEADER: &str = "mcp-session-id";
/// How often idle sessions are looked for, at most (more often for short idle timeouts).
const SWEEP_EVERY: Duration = Duration::from_secs(5);

struct Owned {
    identity: String,
    last_used: Instant,
}

#[derive(Default)]
struct Book {
    sessions: HashMap<String, Owned>,
    /// Sessions per identity, counting `initialize` requests still in flight.
    per_identity: HashMap<String, usize>,
    /// All sessions, counting those in flight.
    total: usize,
}

impl Book {
    fn release(&mut self, identity: &str) {
        self.total = self.total.saturating_sub(1);
        if let Some(count) = self.per_identity.get_mut(identity) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_identity.remove(identity);
            }
        }
    }

    fn forget(&mut self, id: &str) -> bool {
        match self.sessions.remove(id) {
            Some(owned) => {
                self.release(&owned.identity);
                true
            }
            None => false,
        }
    }
}

/// The owners and bounds of one listener's sessions.
pub(super) struct Sessions {
    manager: Arc<LocalSessionManager>,
    book: Mutex<Book>,
    per_identity: usize,
    overall: usize,
    idle: Duration,
    audit: Arc<AuditLog>,
}

impl Sessions {
    /// rmcp's session manager with the idle timeout of `http`, and the book of owners around
    /// it. The sweep for idle sessions runs until `closed` fires.
    pub(super) fn new(
        http: &HttpConfig,
        audit: Arc<AuditLog>,
        closed: CancellationToken,
    ) -> Arc<Self> {
        let idle = Duration::from_secs(http.session_idle_seconds.get());
        let sweep_every = (idle / 2).clamp(Duration::from_millis(500), SWEEP_EVERY);
        let mut manager = LocalSessionManager::default();
        // A little later than ours: our sweep closes idle sessions and forgets them together.
        manager.session_config.keep_alive = Some(idle + sweep_every * 2);
        let sessions = Arc::new(Self {
            manager: Arc::new(manager),
            book: Mutex::new(Book::default()),
            per_identity: usize::try_from(http.max_sessions_per_identity.get())
                .unwrap_or(usize::MAX),
            overall: usize::try_from(http.max_sessions.get()).unwrap_or(usize::MAX),
            idle,
            audit,
        });
        let sweeping = Arc::clone(&sessions);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(sweep_every);
            loop {
                tokio::select! {
                    _ = interval.tick() => sweeping.close_idle().await,
                    () = closed.cancelled() => break,
                }
            }
        });
        sessions
    }

    /// The session manager rmcp's service uses.
    pub(super) fn manager(&self) -> Arc<LocalSessionManager> {
        Arc::clone(&self.manager)
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes the sessions unused for longer than the idle timeout.
    async fn close_idle(&self) {
        let now = Instant::now();
        let idle: Vec<String> = {
            let mut book = self.book();
            let idle: Vec<String> = book
                .sessions
                .iter()
                .filter(|(_, owned)| now.duration_since(owned.last_used) > self.idle)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &idle {
                book.forget(id);
            }
            idle
        };
        for id in idle {
            tracing::debug!(session = %id, "closing an idle session");
            let _ = self.manager.close_session(&id.into()).await;
        }
    }

    /// Reserves a place for a new session of `identity`, or says why there is none.
    fn reserve(&self, identity: &str) -> Result<(), String> {
        let mut book = self.book();
        let mine = book.per_identity.get(identity).copied().unwrap_or(0);
        if mine >= self.per_identity {
            return Err(format!(
                "{identity} already has {mine} open sessions (http.max_sessions_per_identity); \
                 end one with DELETE, or let an unused one close after {} s",
                self.idle.as_secs()
            ));
        }
        if book.total >= self.overall {
            return Err(format!(
                "the server has {} open sessions (http.max_sessions); try again when one has \
                 closed",
                book.total
            ));
        }
        *book.per_identity.entry(identity.to_string()).or_insert(0) += 1;
        book.total += 1;
        Ok(())
    }

    /// Records the session rmcp opened for a reserved place, or gives the place back.
    fn settle(&self, identity: &str, session: Option<&str>) {
        let mut book = self.book();
        match session {
            Some(id) => {
                let owned = Owned {
                    identity: identity.to_string(),
                    last_used: Instant::now(),
                };
                if book.sessions.insert(id.to_string(), owned).is_some() {
                    // The same id twice (rmcp generates random ids; never expected).
                    book.release(identity);
                }
            }
            None => book.release(identity),
        }
    }

    /// Whether `identity` may use session `id`; marks it used. Unknown ids pass (rmcp answers
    /// 404 for them).
    fn may_use(&self, id: &str, identity: &str) -> bool {
        let mut book = self.book();
        match book.sessions.get_mut(id) {
            Some(owned) if owned.identity == identity => {
                owned.last_used = Instant::now();
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    fn record(&self, caller: &Caller, outcome: &str, detail: String) {
        // Refused either way; a failed record is logged by the audit log itself.
        let _ = self
            .audit
            .record(&Entry::refused_request(Some(caller), outcome, detail));
    }
}

/// The answer for a session id that is unknown or another identity's: the same either way.
fn not_found() -> Response {
    reply::jsonrpc_error(
        StatusCode::NOT_FOUND,
        None,
        ErrorCode::INVALID_REQUEST.0,
        "Session not found: this session does not exist or belongs to another caller; start a \
         new one with initialize"
            .into(),
    )
}

/// The layer: checks the owner of a presented session, bounds new ones, and learns the ids rmcp
/// hands out.
pub(super) async fn enforce(
    State(sessions): State<Arc<Sessions>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(caller) = request.extensions().get::<Arc<Caller>>().cloned() else {
        return next.run(request).await;
    };
    let identity = caller.identity.to_string();
    let presented = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    if let Some(id) = presented {
        let deleting = request.method() == Method::DELETE;
        // rmcp answers a DELETE of an unknown id 202; answering it 404 here, as for another
        // identity's session, leaves nothing to tell the two apart by.
        if deleting && !sessions.book().sessions.contains_key(&id) {
            return not_found();
        }
        if !sessions.may_use(&id, &identity) {
            sessions.record(
                &caller,
                "foreign_session",
                "the request presented a session another identity opened".into(),
            );
            return not_found();
        }
        let response = next.run(request).await;
        if deleting && response.status().is_success() {
            sessions.book().forget(&id);
            // rmcp answers 202; a session ended is 204 No Content (the Python SDK expects
            // 200 or 204 and warns otherwise).
            return StatusCode::NO_CONTENT.into_response();
        }
        return response;
    }
    let initializing = request
        .extensions()
        .get::<DecodedRequest>()
        .is_some_and(|decoded| decoded.method == "initialize");
    if !initializing {
        return next.run(request).await;
    }
    if let Err(reason) = sessions.reserve(&identity) {
        sessions.record(&caller, "too_many_sessions", reason.clone());
        let id = request
            .extensions()
            .get::<DecodedRequest>()
            .map(|decoded| decoded.id.clone());
        let mut response = reply::jsonrpc_error(
            StatusCode::TOO_MANY_REQUESTS,
            id,
            reply::RATE_LIMITED,
            format!("Too many sessions: {reason}"),
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(SWEEP_EVERY.as_secs()),
        );
        return response;
    }
    let response = next.run(request).await;
    let opened = response
        .headers()
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok());
    sessions.settle(&identity, opened);
    response
}
