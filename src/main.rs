//! The `systemmanager` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use systemmanager::commands;
use systemmanager::config::{self, Config};
use systemmanager::logging;
use systemmanager::serve::{self, Transports};

/// SystemManager: lets AI assistants (Claude, VS Code, any MCP client) see and safely manage
/// this Linux host over the Model Context Protocol.
///
/// Desktop clients start `systemmanager serve` themselves and talk to it over stdin/stdout.
/// Remote clients use Streamable HTTP: `systemmanager serve --http 127.0.0.1:8080`, then
/// point the client at http://127.0.0.1:8080/mcp.
#[derive(Debug, Parser)]
#[command(name = "systemmanager", version, arg_required_else_help = true)]
struct Cli {
    /// Configuration file (TOML). Without it: $SYSTEMMANAGER_CONFIG, then
    /// /etc/systemmanager/config.toml, then the built-in defaults.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the MCP server: over stdio unless --http or --unix is given.
    Serve {
        /// Serve Streamable HTTP at http://ADDRESS/mcp. Without ADDRESS, or with a bare port,
        /// on loopback (127.0.0.1:8080); beyond loopback only with TLS or http.allow_plaintext.
        #[arg(
            long,
            value_name = "ADDRESS",
            num_args = 0..=1,
            default_missing_value = "127.0.0.1:8080",
            value_parser = parse_listen_address
        )]
        http: Option<SocketAddr>,
        /// Serve Streamable HTTP on a unix socket at PATH (created with mode 0660).
        #[arg(long, value_name = "PATH")]
        unix: Option<PathBuf>,
        /// Register only tools that change nothing (the `read` tier), whatever the config says.
        #[arg(long)]
        read_only: bool,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Manage the bearer tokens HTTP clients authenticate with.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Work with the audit log.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Publish the server on a tailnet as a Tailscale Service.
    Tailscale {
        #[command(subcommand)]
        action: TailscaleAction,
    },
    /// Ask a running server's GET /healthz; exit 0 when it answers 200 (container healthchecks).
    Healthcheck {
        /// The server's HTTP address (a bare port means loopback).
        #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1:8080", value_parser = parse_listen_address)]
        http: SocketAddr,
        /// Ask over this unix socket instead.
        #[arg(long, value_name = "PATH")]
        unix: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum TailscaleAction {
    /// Print the file `tailscale serve set-config --all FILE` applies to publish this server
    /// as svc:NAME (or, with --format cli, the `tailscale serve --service` line).
    ServiceConfig {
        /// The service's name: svc:NAME.
        #[arg(long, value_name = "svc:NAME")]
        service: String,
        /// The port tailnet clients connect to (443: HTTPS by tailscaled; 80: plain HTTP
        /// inside the tailnet's WireGuard).
        #[arg(long, default_value_t = 443)]
        port: u16,
        /// Where the server listens (`serve --http`); a bare port means loopback.
        #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1:8080", value_parser = parse_listen_address, conflicts_with = "unix")]
        listen: SocketAddr,
        /// The server listens on this unix socket instead (`serve --unix`).
        #[arg(long, value_name = "PATH")]
        unix: Option<PathBuf>,
        /// The server serves TLS itself at --listen ([tls] configured).
        #[arg(long, conflicts_with = "unix")]
        backend_tls: bool,
        /// `file` (HuJSON for set-config, the CLI line in its comments) or `cli`.
        #[arg(long, default_value = "file", value_parser = ["file", "cli"])]
        format: String,
    },
}

#[derive(Debug, Subcommand)]
enum AuditAction {
    /// Check the hash chain; name the first edited, deleted or reordered record. Exit 1 if
    /// broken.
    Verify {
        /// Audit files, oldest first (e.g. audit.jsonl.2 audit.jsonl.1 audit.jsonl).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Create a token and print its secret (shown only this once) on stdout.
    Create {
        /// A name to list, revoke and audit it by (letters, digits, `.`, `_`, `-`).
        #[arg(long)]
        name: String,
        /// What its holder may do: viewer, operator, admin, or a role from [roles].
        #[arg(long)]
        role: String,
        /// How long it is valid: e.g. 30d, 12h, 90m, or never.
        #[arg(long, default_value = "90d")]
        expires: String,
    },
    /// List tokens: name, role, created, expires, last used, status. Never secrets.
    List,
    /// Revoke a token; running servers refuse it within a second.
    Revoke {
        /// The token's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Check the configuration and print the effective settings (defaults filled in).
    Check,
}

/// `HOST:PORT`, or a bare port on loopback.
fn parse_listen_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| {
        format!("`{text}` is not an address like 127.0.0.1:8080, [::1]:8080 or a port number")
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (config, source) = match config::load(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("systemmanager: {error}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Config {
            action: ConfigAction::Check,
        } => {
            println!("# configuration OK; source: {source}");
            print!("{}", config.to_toml());
            ExitCode::SUCCESS
        }
        Command::Token { action } => report(token_command(&config, action)),
        Command::Audit {
            action: AuditAction::Verify { files },
        } => match commands::audit::verify(&files, &mut std::io::stdout()) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(error) => {
                eprintln!("systemmanager: {error:#}");
                ExitCode::from(2)
            }
        },
        Command::Tailscale {
            action:
                TailscaleAction::ServiceConfig {
                    service,
                    port,
                    listen,
                    unix,
                    backend_tls,
                    format,
                },
        } => {
            use commands::tailscale::{Backend, Format};
            let backend = match &unix {
                Some(path) => Backend::Unix(path),
                None => Backend::Tcp {
                    address: listen,
                    tls: backend_tls,
                },
            };
            let format = if format == "cli" {
                Format::Cli
            } else {
                Format::File
            };
            report(commands::tailscale::service_config(
                &service,
                port,
                &backend,
                format,
                &mut std::io::stdout(),
            ))
        }
        Command::Healthcheck { http, unix } => {
            let target = match &unix {
                Some(path) => commands::healthcheck::Target::Unix(path),
                None => commands::healthcheck::Target::Tcp(http),
            };
            report(commands::healthcheck::check(&target))
        }
        Command::Serve {
            http,
            unix,
            read_only,
        } => {
            let mut config = config;
            config.security.read_only |= read_only;
            serve_command(config, Transports { http, unix })
        }
    }
}

fn token_command(config: &Config, action: TokenAction) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    match action {
        TokenAction::Create {
            name,
            role,
            expires,
        } => commands::token::create(
            config,
            &name,
            &role,
            &expires,
            &mut out,
            &mut std::io::stderr(),
        ),
        TokenAction::List => commands::token::list(config, &mut out),
        TokenAction::Revoke { name } => commands::token::revoke(config, &name, &mut out),
    }
}

/// Exit status of a command: 0, or 1 with the error on stderr.
fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("systemmanager: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve_command(config: Config, transports: Transports) -> ExitCode {
    logging::init(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("systemmanager: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serve::run(config, transports));
    // A blocking read of a terminal stdin must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("systemmanager: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_defaults_to_loopback() {
        let cli = Cli::try_parse_from(["systemmanager", "serve", "--http"]).expect("parses");
        let Command::Serve { http, .. } = cli.command else {
            panic!("serve")
        };
        assert_eq!(http, Some("127.0.0.1:8080".parse().expect("address")));
        assert_eq!(
            parse_listen_address("9000"),
            Ok("127.0.0.1:9000".parse().expect("address"))
        );
        assert_eq!(
            parse_listen_address("[::1]:9000"),
            Ok("[::1]:9000".parse().expect("address"))
        );
        assert!(parse_listen_address("localhost").is_err());
    }
}
