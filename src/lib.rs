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
//! [`tool`] is the vocabulary they share (a tool's declaration and signature), [`auth`] turns
//! credentials into identities for the transports, [`config`] is what the operator chose,
//! [`state_file`] writes the files the server keeps, and [`serve`] wires them together for the
//! `serve` command.

pub mod access;
pub mod audit;
pub mod auth;
pub mod bounded;
pub mod commands;
pub mod config;
pub mod domains;
pub mod gate;
pub mod logging;
pub(crate) mod mcp;
pub(crate) mod render;
pub mod serve;
pub(crate) mod state_file;
pub mod tool;
pub(crate) mod transport;
