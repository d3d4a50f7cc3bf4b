//! The command-line actions besides `serve`: what they do and print. `main.rs` only parses.

pub mod audit;
pub mod healthcheck;
pub mod tailscale;
pub mod token;
