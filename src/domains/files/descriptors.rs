//! The descriptors file calls may hold, all of them together. Each call bounds its own (a search
//! holds only the directories on its current path, at most 64 deep, and one file), but sixty-four
//! deep searches at once still held 1,024 and made another caller's `files_read` fail with "Too
//! many open files". So every file call first reserves what it may hold at most from one budget:
//! (the process's descriptor limit - 128) / 2 (the HTTP connection bound takes the other
//! half, see the transport's connection loop). A call that finds the budget spent waits for a
//! reservation to be given back, within its timeout. With the usual hard limit (raised to at
//! start), the budget is far beyond what is ever reached.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::tool::ToolError;

/// What a search reserves: its directory path (64) and a file, an ignore file and a margin.
pub(crate) const SEARCH: u32 = 72;
/// What a tree reserves: the directory it reads and the one it descends from.
pub(crate) const TREE: u32 = 4;
/// What a list, read, tail or stat reserves: the directory, the file, `/proc/self/fd` lookups.
pub(crate) const ONE_FILE: u32 = 4;

/// The budget of descriptors shared by the file tools.
#[derive(Debug, Clone)]
pub(crate) struct DescriptorBudget {
    permits: Arc<Semaphore>,
}

impl DescriptorBudget {
    /// Half of the soft `RLIMIT_NOFILE` less 128, at least 128.
    pub(crate) fn from_limit() -> Self {
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        Self::of(usize::try_from(soft.saturating_sub(128) / 2).unwrap_or(usize::MAX))
    }

    fn of(descriptors: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(
                descriptors.clamp(128, Semaphore::MAX_PERMITS),
            )),
        }
    }

    /// Reserves `count` descriptors until the returned permit is dropped, waiting while the
    /// budget is spent. Errors: never in practice (the budget is never closed).
    pub(crate) async fn reserve(&self, count: u32) -> Result<OwnedSemaphorePermit, ToolError> {
        Arc::clone(&self.permits)
            .acquire_many_owned(count)
            .await
            .map_err(|_| ToolError::unavailable("the server is shutting down"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_wait_for_the_budget() {
        let budget = DescriptorBudget::of(150);
        let first = budget.reserve(SEARCH).await.expect("first");
        let second = budget.reserve(SEARCH).await.expect("second");
        let third =
            tokio::time::timeout(std::time::Duration::from_millis(50), budget.reserve(SEARCH))
                .await;
        assert!(third.is_err(), "a third deep search waits");
        drop(first);
        let third = budget
            .reserve(SEARCH)
            .await
            .expect("third, once one is given back");
        drop((second, third));
    }
}
