//! Transports: how bytes arrive and who sent them. They decode messages, resolve the caller's
//! identity, and hand every request to the MCP face; they never know what a tool does.

pub(crate) mod http;
pub(crate) mod jsonrpc;
pub(crate) mod stdio;
