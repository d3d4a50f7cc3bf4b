//! JSON-RPC error codes of our own, outside the reserved range as the MCP specification asks,
//! named after the HTTP status they accompany. The HTTP transport sends them with that status;
//! `resources/read` uses them for the same refusals.

pub(crate) const UNAUTHORIZED: i32 = -31401;
pub(crate) const FORBIDDEN: i32 = -31403;
pub(crate) const RATE_LIMITED: i32 = -31429;
