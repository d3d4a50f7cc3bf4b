//! SystemManager: an MCP server that lets AI assistants monitor and safely manage a Linux host.
//!
//! Data flows one way, and the module tree follows it:
//!
//! | module        | knows                                                        |
//! |---------------|--------------------------------------------------------------|
//! | [`transport`] | bytes, stdio framing, HTTP, Origin/Host, who is calling      |
//! | [`mcp`]       | the protocol: eras, server info, the tool listing            |
//! | [`gate`]      | the one door: identity, timeout, output cap, the call log    |
//! | [`domains`]   | the host: collectors and the tools declared over them        |
//!
//! Each imports only the layers below it. [`access`] (who calls and what they may do) and
//! [`tool`] (a tool's declaration and signature) are the vocabulary they share, [`auth`] turns
//! credentials into identities for the transports, [`audit`] keeps the tamper-evident record,
//! [`config`] is what the operator chose, [`state_file`] writes the files the server keeps, and
//! [`serve`] wires them together for the `serve` command ([`notify`] tells systemd how it goes). `tests/architecture.rs` fails when an
//! import runs against the flow, or one domain imports another; everything outside the
//! library's surface is `pub(crate)`, and the `unreachable_pub` lint keeps it so.

pub mod access;
pub mod audit;
pub mod auth;
pub mod bounded;
pub mod commands;
pub mod config;
pub mod domains;
pub mod gate;
pub(crate) mod localapi;
pub mod logging;
pub(crate) mod mcp;
pub(crate) mod metrics;
pub(crate) mod notify;
pub(crate) mod render;
pub mod serve;
pub(crate) mod state_file;
pub mod tool;
pub(crate) mod transport;
