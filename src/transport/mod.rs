//! Transports: how bytes arrive and who sent them. They decode messages, resolve the caller's
//! identity, and hand every request to the MCP face; they never know what a tool does.

pub mod http;
pub mod jsonrpc;
pub mod stdio;
