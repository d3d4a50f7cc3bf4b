//! What more than one domain needs: kernel facts, paging, sampling, caching, user names, secret
//! names. Not a domain: no tools, and it imports no domain.

pub mod cached;
pub mod kernel;
pub mod paging;
pub mod pressure;
pub mod sampling;
pub mod secret_names;
pub mod users;
