//! `systemmanager healthcheck`: asks a running server's `GET /healthz` and exits 0 on `200`.
//! For container healthchecks: the image has no shell, curl or wget, only this binary.
//!
//! One HTTP/1.0 request over a plain socket, written by hand: pulling an HTTP client and a
//! runtime into a probe that reads one status line would cost more than these lines.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};

/// How long the probe waits to connect, and for the answer.
const PATIENCE: Duration = Duration::from_secs(3);

/// Where to ask.
pub enum Target<'a> {
    Tcp(SocketAddr),
    Unix(&'a Path),
}

/// Sends `GET /healthz` and checks for `HTTP/1.x 200`. Errors: cannot connect, no answer
/// within 3 s, or another status (named in the error).
pub fn check(target: &Target<'_>) -> anyhow::Result<()> {
    let (answer, host) = match target {
        Target::Tcp(address) => {
            let mut stream = TcpStream::connect_timeout(address, PATIENCE)
                .with_context(|| format!("cannot connect to {address}"))?;
            stream.set_read_timeout(Some(PATIENCE))?;
            stream.set_write_timeout(Some(PATIENCE))?;
            (
                exchange(&mut stream, &address.to_string())?,
                address.to_string(),
            )
        }
        Target::Unix(path) => {
            let mut stream = UnixStream::connect(path)
                .with_context(|| format!("cannot connect to {}", path.display()))?;
            stream.set_read_timeout(Some(PATIENCE))?;
            stream.set_write_timeout(Some(PATIENCE))?;
            (
                exchange(&mut stream, "localhost")?,
                path.display().to_string(),
            )
        }
    };
    let status = answer.lines().next().unwrap_or_default();
    let code = status.split_whitespace().nth(1).unwrap_or_default();
    if code != "200" {
        bail!("{host} answered `{status}` to GET /healthz");
    }
    Ok(())
}

fn exchange(stream: &mut (impl Read + Write), host: &str) -> anyhow::Result<String> {
    write!(stream, "GET /healthz HTTP/1.0\r\nHost: {host}\r\n\r\n").context("cannot send")?;
    let mut answer = Vec::with_capacity(256);
    stream
        .take(4096)
        .read_to_end(&mut answer)
        .context("no answer")?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}
