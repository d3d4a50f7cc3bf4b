//! The `files` domain: list, tree, search, read, tail and stat inside configured roots
//! (`[files] roots`), each read-only, every open confined beneath its root by the kernel
//! (`confine.rs`), with a deny list that holds even inside a root.
//!
//! No roots configured: no file tools are registered.

pub(crate) mod bytes_text;
pub(crate) mod confine;
pub(crate) mod descriptors;
pub(crate) mod fit_to_cap;
pub(crate) mod list;
pub(crate) mod opening;
pub(crate) mod read;
pub(crate) mod search;
pub(crate) mod stat;
pub(crate) mod tail;
pub(crate) mod tree;

use std::sync::Arc;

use crate::config::Config;
use crate::domains::shared::users::UserNames;
use crate::tool::Registry;

pub(crate) fn register(registry: &mut Registry, config: &Config, users: &Arc<UserNames>) {
    let roots = Arc::new(confine::Roots::open(&config.files));
    if roots.is_empty() {
        if !config.files.roots.is_empty() {
            tracing::warn!("no file root could be opened: the file tools are off");
        }
        return;
    }
    let files = &config.files;
    registry.register_collector(list::DirectoryLister {
        roots: Arc::clone(&roots),
        users: Arc::clone(users),
    });
    registry.register_collector(tree::TreeBuilder {
        roots: Arc::clone(&roots),
    });
    registry.register_collector(search::FileSearcher {
        roots: Arc::clone(&roots),
        max_file_bytes: files.max_search_file_bytes.get(),
    });
    registry.register_collector(read::FileReader {
        roots: Arc::clone(&roots),
        max_read_bytes: files.max_read_bytes.get(),
    });
    registry.serve_file_resources_with(&read::FILES_READ);
    registry.register(tail::FilesTailTool {
        tailer: Arc::new(tail::FileTailer {
            roots: Arc::clone(&roots),
            max_read_bytes: files.max_read_bytes.get(),
        }),
    });
    registry.register_collector(stat::FileInspector {
        roots,
        users: Arc::clone(users),
        max_hash_bytes: files.max_hash_bytes.get(),
    });
}
