//! tailscaled's LocalAPI: one `GET` over its unix socket (`/var/run/tailscale/tailscaled.sock`),
//! the way the `tailscale` CLI asks it. The identity check (`whois`) and `tailscale_status`
//! (`status`, `prefs`) share it.

use std::path::Path;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// tailscaled checks the Host of LocalAPI requests; this is the name its own CLI sends.
const HOST: &str = "local-tailscaled.sock";

/// `GET path_and_query` on tailscaled's socket; the answer's body (at most `max_bytes`) when the
/// status is 2xx. Errors (safe to show a client): the socket cannot be reached, the connection
/// fails, the body is larger than `max_bytes`, or tailscaled answered another status (quoted
/// with its text).
pub(crate) async fn get(
    socket: &Path,
    path_and_query: &str,
    max_bytes: usize,
) -> Result<Bytes, String> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|error| format!("cannot reach tailscaled at {}: {error}", socket.display()))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|error| format!("tailscaled's LocalAPI: {error}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = hyper::Request::get(path_and_query)
        .header(hyper::header::HOST, HOST)
        .body(Empty::new())
        .map_err(|error| error.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| format!("tailscaled's LocalAPI: {error}"))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), max_bytes)
        .collect()
        .await
        .map_err(|error| format!("tailscaled's answer: {error}"))?
        .to_bytes();
    if !status.is_success() {
        // Quoted, but not a whole page of it.
        let text: String = String::from_utf8_lossy(&body)
            .trim()
            .chars()
            .take(200)
            .collect();
        return Err(format!("tailscaled answered {status}: {text}"));
    }
    Ok(body)
}
