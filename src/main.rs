//! The `systemmanager` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

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
        /// Serve Streamable HTTP at http://ADDRESS/mcp, e.g. 127.0.0.1:8080 (keep it on
        /// loopback unless you know who can reach it).
        #[arg(long, value_name = "ADDRESS")]
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
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Check the configuration and print the effective settings (defaults filled in).
    Check,
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
