//! What more than one domain needs: kernel facts, paging, sampling, caching, user names, secret
//! names. Not a domain: no tools, and it imports no domain.

pub(crate) mod cached;
pub(crate) mod filesystems;
pub(crate) mod kernel;
pub(crate) mod nvidia;
pub(crate) mod paging;
pub(crate) mod pressure;
pub(crate) mod sampling;
pub(crate) mod secret_names;
pub(crate) mod time;
pub(crate) mod users;
