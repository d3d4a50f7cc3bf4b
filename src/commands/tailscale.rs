//! `systemmanager tailscale service-config`: the Tailscale Services configuration that publishes
//! this server on the tailnet as `svc:NAME`, in the file format `tailscale serve set-config
//! --all FILE` applies (HuJSON, version `0.0.1`), with the equivalent CLI line in its comments.
//!
//! tailscaled decides TLS by the target's scheme, not the port (`ipn/conffile/serveconf.go`):
//! an `http://` target makes the port plain HTTP, even 443 (tailscale issues 18219, 19724). And
//! the schemes that do terminate TLS in front of a plain-HTTP server without tailscaled's web
//! proxy (`tls-terminated-tcp://`, `tcp://`) forward the caller's bytes as they are, from
//! tailscaled's own user: with `[tailscale] enabled`, a caller could write any
//! `X-Forwarded-For` and be believed. So the file holds only what is safe: `http://` on port 80
//! (plain HTTP inside the tailnet's WireGuard, through the web proxy) and `https+insecure://`
//! to a server that serves TLS itself (the web proxy again, identity headers included). For
//! TLS in front of a plain-HTTP server the CLI form is the way (`tailscale serve
//! --service=svc:NAME --https=443 http://…`), and the command prints it instead.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::bail;
use serde_json::json;

/// The server behind the service.
pub enum Backend<'a> {
    /// Streamable HTTP on a TCP address; `tls`: the server itself serves TLS there.
    Tcp { address: SocketAddr, tls: bool },
    /// Streamable HTTP on a unix socket.
    Unix(&'a Path),
}

/// What to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The set-config file, with the CLI line in its comments.
    File,
    /// Only the `tailscale serve` command line.
    Cli,
}

/// Writes the configuration for `service` (`svc:NAME`) on tailnet `port`. Errors: the name is
/// not a Tailscale Service name; the port is 0; the backend is not one `tailscale serve` can
/// reach safely (a relative or multi-line socket path, port 0, an unspecified address, plain
/// HTTP beyond loopback); or, in the file format, a TLS port in front of a plain-HTTP server
/// (the message gives the CLI line instead).
pub fn service_config(
    service: &str,
    port: u16,
    backend: &Backend<'_>,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    check_service_name(service)?;
    if port == 0 {
        bail!("--port must be a TCP port between 1 and 65535");
    }
    check_backend(backend)?;
    let target = match backend {
        Backend::Tcp {
            address,
            tls: false,
        } => format!("http://{address}"),
        Backend::Tcp { address, tls: true } => format!("https+insecure://{address}"),
        Backend::Unix(path) => format!("http://unix:{}", path.display()),
    };
    let listener = if port == 80 {
        "--http=80".to_string()
    } else {
        format!("--https={port}")
    };
    let cli = format!(
        "tailscale serve --service={} {listener} {}",
        shell_word(service),
        shell_word(&target)
    );
    if format == Format::Cli {
        writeln!(out, "{cli}")?;
        return Ok(());
    }
    let tls_in_front = port != 80 && !matches!(backend, Backend::Tcp { tls: true, .. });
    if tls_in_front {
        bail!(
            "a set-config file cannot put TLS on port {port} in front of a plain-HTTP server \
             safely: an http:// target is served as plain HTTP whatever the port (tailscale \
             issue 19724), and tls-terminated-tcp:// forwards the caller's bytes from \
             tailscaled's own user, so a forged X-Forwarded-For would be believed. Use the CLI \
             form, which puts tailscaled's HTTPS proxy in front:\n  {cli}\n(or --port 80, \
             or serve TLS yourself with [tls] and pass --backend-tls)"
        );
    }
    let document = json!({
        "version": "0.0.1",
        "services": { service: { "endpoints": { format!("tcp:{port}"): target } } }
    });
    let name = service.trim_start_matches("svc:");
    let scheme = if port == 80 { "http" } else { "https" };
    let port_suffix = if port == 443 || port == 80 {
        String::new()
    } else {
        format!(":{port}")
    };
    writeln!(
        out,
        "// Tailscale Service {service}: SystemManager behind tailscaled's web proxy."
    )?;
    writeln!(
        out,
        "// Apply on this (tagged) node: tailscale serve set-config --all FILE"
    )?;
    writeln!(
        out,
        "// (--all replaces every service configured on this node). Approve the service"
    )?;
    writeln!(
        out,
        "// in the admin console (or autoApprovers.services); clients then use"
    )?;
    writeln!(
        out,
        "// {scheme}://{name}.<tailnet>.ts.net{port_suffix}/mcp"
    )?;
    writeln!(out, "// The same with the CLI:")?;
    writeln!(out, "//   {cli}")?;
    writeln!(out, "{}", serde_json::to_string_pretty(&document)?)?;
    Ok(())
}

/// Where `tailscale serve` may send callers: an absolute, one-line socket path; a TCP address
/// with a port, not the unspecified address; plain HTTP only on loopback (the server refuses
/// plain HTTP elsewhere).
fn check_backend(backend: &Backend<'_>) -> anyhow::Result<()> {
    match backend {
        Backend::Unix(path) => {
            let text = path.to_string_lossy();
            if !path.is_absolute() {
                bail!(
                    "--unix `{text}` must be an absolute path (tailscaled resolves it, not this shell)"
                );
            }
            if text.chars().any(char::is_control) {
                bail!("--unix must not contain control characters (newlines, tabs)");
            }
        }
        Backend::Tcp { address, tls } => {
            if address.port() == 0 {
                bail!("--listen {address}: give the port the server listens on");
            }
            if address.ip().is_unspecified() {
                bail!(
                    "--listen {address}: give an address to connect to, such as 127.0.0.1:{}",
                    address.port()
                );
            }
            if !tls && !address.ip().is_loopback() {
                bail!(
                    "--listen {address}: the server serves plain HTTP on loopback only; use \
                     127.0.0.1, or serve TLS ([tls]) and pass --backend-tls"
                );
            }
        }
    }
    Ok(())
}

/// `word` as one POSIX shell word: as it is when it holds only safe characters, else in single
/// quotes (a `'` inside written `'\''`), so the line can be pasted into a shell.
fn shell_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./:@%+=,[]".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// `svc:` and a DNS label: 1–63 letters, digits or `-`, not starting or ending with `-`.
fn check_service_name(service: &str) -> anyhow::Result<()> {
    let Some(label) = service.strip_prefix("svc:") else {
        bail!("`{service}` is not a Tailscale Service name; they look like `svc:NAME`");
    };
    let valid = !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-');
    if !valid {
        bail!(
            "`{label}` is not a DNS label: 1 to 63 letters, digits or `-`, not starting or \
             ending with `-`"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(port: u16, backend: &Backend<'_>, format: Format) -> anyhow::Result<String> {
        let mut out = Vec::new();
        service_config("svc:systemmanager", port, backend, format, &mut out)?;
        Ok(String::from_utf8(out).expect("utf-8"))
    }

    fn document(text: &str) -> serde_json::Value {
        let json: String = text.lines().filter(|l| !l.starts_with("//")).collect();
        serde_json::from_str(&json).expect("json after the comments")
    }

    #[test]
    fn a_tls_port_never_gets_a_plain_or_raw_target() {
        let address = "127.0.0.1:8080".parse().expect("address");
        let plain = Backend::Tcp {
            address,
            tls: false,
        };
        let refused = print(443, &plain, Format::File).expect_err("plain HTTP behind 443");
        let message = refused.to_string();
        assert!(
            message.contains("--https=443 http://127.0.0.1:8080"),
            "{message}"
        );
        assert!(message.contains("X-Forwarded-For"), "{message}");
        let tls = document(
            &print(443, &Backend::Tcp { address, tls: true }, Format::File).expect("file"),
        );
        assert_eq!(
            tls["services"]["svc:systemmanager"]["endpoints"]["tcp:443"],
            "https+insecure://127.0.0.1:8080"
        );
        let http = document(&print(80, &plain, Format::File).expect("file"));
        assert_eq!(
            http["services"]["svc:systemmanager"]["endpoints"]["tcp:80"],
            "http://127.0.0.1:8080"
        );
        let unix = Backend::Unix(Path::new("/run/systemmanager/mcp.sock"));
        assert!(print(443, &unix, Format::File).is_err());
        assert_eq!(
            print(443, &unix, Format::Cli).expect("cli"),
            "tailscale serve --service=svc:systemmanager --https=443 http://unix:/run/systemmanager/mcp.sock\n"
        );
    }

    #[test]
    fn the_cli_line_is_one_shell_word_per_argument() {
        let odd = Backend::Unix(Path::new("/run/my sock/it's $(id).sock"));
        let line = print(443, &odd, Format::Cli).expect("cli");
        assert!(
            line.trim_end()
                .ends_with(r"--https=443 'http://unix:/run/my sock/it'\''s $(id).sock'"),
            "{line}"
        );
    }

    #[test]
    fn unsafe_backends_are_refused() {
        let newline = Backend::Unix(Path::new("/run/a\n\"x\": 1"));
        assert!(print(80, &newline, Format::File).is_err());
        assert!(print(80, &Backend::Unix(Path::new("relative.sock")), Format::File).is_err());
        for address in ["127.0.0.1:0", "0.0.0.0:8080", "10.1.2.3:8080", "[::]:8080"] {
            let backend = Backend::Tcp {
                address: address.parse().expect("address"),
                tls: false,
            };
            assert!(print(80, &backend, Format::Cli).is_err(), "{address}");
        }
        let remote_tls = Backend::Tcp {
            address: "10.1.2.3:8443".parse().expect("address"),
            tls: true,
        };
        assert!(print(443, &remote_tls, Format::File).is_ok());
    }

    #[test]
    fn service_names_are_checked() {
        let address = "127.0.0.1:8080".parse().expect("address");
        let backend = Backend::Tcp {
            address,
            tls: false,
        };
        for bad in [
            "systemmanager",
            "svc:",
            "svc:-x",
            "svc:a_b",
            "svc:a.b",
            &format!("svc:{}", "a".repeat(64)),
        ] {
            let mut out = Vec::new();
            assert!(
                service_config(bad, 80, &backend, Format::File, &mut out).is_err(),
                "{bad}"
            );
        }
    }
}
