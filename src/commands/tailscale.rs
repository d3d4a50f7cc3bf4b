//! `systemmanager tailscale service-config`: the Tailscale Services configuration that publishes
//! this server on the tailnet as `svc:NAME`, in the file format `tailscale serve set-config
//! --all FILE` applies (HuJSON, version `0.0.1`), with the equivalent CLI line in its comments.
//!
//! tailscaled decides TLS by the target's scheme, not the port (`ipn/conffile/serveconf.go`):
//! an `http://` target makes the port plain HTTP, even 443 (tailscale issues 18219, 19724). So
//! the file never pairs a TLS port with `http://`: a plain-HTTP server behind port 443 gets
//! `tls-terminated-tcp://` (tailscaled terminates TLS and forwards the bytes; no identity
//! headers, so callers bring a token), a server with its own TLS gets `https+insecure://`
//! (tailscaled's web proxy, which adds `X-Forwarded-For` for the `whois` identity), and only
//! port 80 gets `http://`. The CLI form (`tailscale serve --service=svc:NAME --https=443
//! http://…`) is the one that puts TLS in front of a plain-HTTP server with the web proxy; the
//! comment offers it.

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
/// not a Tailscale Service name, the port is 0, or the combination cannot be written safely in
/// the file format (a unix socket behind a TLS port: the message gives the CLI line instead).
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
    let plain_target = match backend {
        Backend::Tcp {
            address,
            tls: false,
        } => format!("http://{address}"),
        Backend::Tcp { address, tls: true } => format!("https+insecure://{address}"),
        Backend::Unix(path) => format!("http://unix:{}", path.display()),
    };
    let cli = if port == 80 {
        format!("tailscale serve --service={service} --http=80 {plain_target}")
    } else {
        format!("tailscale serve --service={service} --https={port} {plain_target}")
    };
    if format == Format::Cli {
        writeln!(out, "{cli}")?;
        return Ok(());
    }
    let target = file_target(port, backend, &cli)?;
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
        "// Tailscale Service {service} → SystemManager ({plain_target})."
    )?;
    writeln!(
        out,
        "// Apply on this (tagged) node: tailscale serve set-config --all FILE"
    )?;
    writeln!(
        out,
        "// (--all replaces every service configured on this node.) Then approve the service"
    )?;
    writeln!(
        out,
        "// in the admin console (or autoApprovers.services), and clients use"
    )?;
    writeln!(
        out,
        "// {scheme}://{name}.<tailnet>.ts.net{port_suffix}/mcp"
    )?;
    match backend {
        Backend::Tcp { tls: false, .. } if port != 80 => {
            writeln!(
                out,
                "// tcp:{port} → tls-terminated-tcp: tailscaled terminates TLS and forwards the bytes,"
            )?;
            writeln!(
                out,
                "// so callers authenticate with a bearer token (no identity headers). For tailnet"
            )?;
            writeln!(
                out,
                "// identity through whois instead, use the web proxy the CLI sets up:"
            )?;
        }
        _ => writeln!(out, "// The same with the CLI:")?,
    }
    writeln!(out, "//   {cli}")?;
    writeln!(out, "{}", serde_json::to_string_pretty(&document)?)?;
    Ok(())
}

/// The endpoint target for the file: never `http://` behind a TLS port.
fn file_target(port: u16, backend: &Backend<'_>, cli: &str) -> anyhow::Result<String> {
    Ok(match backend {
        Backend::Tcp {
            address,
            tls: false,
        } if port == 80 => format!("http://{address}"),
        Backend::Tcp {
            address,
            tls: false,
        } => format!("tls-terminated-tcp://{address}"),
        Backend::Tcp { address, tls: true } => format!("https+insecure://{address}"),
        Backend::Unix(path) if port == 80 => format!("http://unix:{}", path.display()),
        Backend::Unix(_) => bail!(
            "in a set-config file a unix-socket target is plain HTTP whatever the port \
             (tailscale issue 19724): use the CLI form, which puts TLS in front of it:\n  {cli}\n\
             (or --listen 127.0.0.1:PORT for a file with TLS on port {port})"
        ),
    })
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

    fn file(port: u16, backend: &Backend<'_>) -> anyhow::Result<String> {
        let mut out = Vec::new();
        service_config("svc:systemmanager", port, backend, Format::File, &mut out)?;
        Ok(String::from_utf8(out).expect("utf-8"))
    }

    fn document(text: &str) -> serde_json::Value {
        let json: String = text.lines().filter(|l| !l.starts_with("//")).collect();
        serde_json::from_str(&json).expect("json after the comments")
    }

    #[test]
    fn a_tls_port_never_gets_a_plain_http_target() {
        let address = "127.0.0.1:8080".parse().expect("address");
        let plain = document(
            &file(
                443,
                &Backend::Tcp {
                    address,
                    tls: false,
                },
            )
            .expect("file"),
        );
        assert_eq!(
            plain["services"]["svc:systemmanager"]["endpoints"]["tcp:443"],
            "tls-terminated-tcp://127.0.0.1:8080"
        );
        let tls = document(&file(443, &Backend::Tcp { address, tls: true }).expect("file"));
        assert_eq!(
            tls["services"]["svc:systemmanager"]["endpoints"]["tcp:443"],
            "https+insecure://127.0.0.1:8080"
        );
        let http = document(
            &file(
                80,
                &Backend::Tcp {
                    address,
                    tls: false,
                },
            )
            .expect("file"),
        );
        assert_eq!(
            http["services"]["svc:systemmanager"]["endpoints"]["tcp:80"],
            "http://127.0.0.1:8080"
        );
        let unix = file(
            443,
            &Backend::Unix(Path::new("/run/systemmanager/mcp.sock")),
        )
        .expect_err("plain HTTP on 443");
        assert!(
            unix.to_string()
                .contains("--https=443 http://unix:/run/systemmanager/mcp.sock")
        );
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
                service_config(bad, 443, &backend, Format::File, &mut out).is_err(),
                "{bad}"
            );
        }
    }
}
