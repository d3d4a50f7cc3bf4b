//! User names for uids, from the monitored host's `/etc/passwd` (under `[host] rootfs`), not
//! the server's: in a container the two differ. Not a domain: no tools.
//!
//! Read directly rather than through NSS (`getpwuid`): NSS answers for the server's own
//! filesystem, and a lookup per row of a process list would cost more than the list. Users
//! that only NSS knows (LDAP, systemd-homed) show as their uid.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// uid → user name.
pub(crate) type Table = HashMap<u32, String>;

/// The uid → name table, re-read when the file changes.
pub(crate) struct UserNames {
    passwd: PathBuf,
    cached: Mutex<Option<(SystemTime, Arc<Table>)>>,
}

impl UserNames {
    pub(crate) fn new(rootfs: &std::path::Path) -> Self {
        Self {
            passwd: rootfs.join("etc/passwd"),
            cached: Mutex::new(None),
        }
    }

    /// The current table; empty when the file is unreadable.
    pub(crate) fn table(&self) -> Arc<Table> {
        let modified = std::fs::metadata(&self.passwd)
            .and_then(|meta| meta.modified())
            .ok();
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some((seen, table)), Some(modified)) = (cached.as_ref(), modified)
            && *seen == modified
        {
            return Arc::clone(table);
        }
        let table = Arc::new(
            std::fs::read_to_string(&self.passwd)
                .map(|text| parse_passwd(&text))
                .unwrap_or_default(),
        );
        if let Some(modified) = modified {
            *cached = Some((modified, Arc::clone(&table)));
        }
        table
    }
}

/// A name for `uid`: the user's, or the number when the host does not know it.
pub(crate) fn name_of(table: &Table, uid: u32) -> String {
    table.get(&uid).cloned().unwrap_or_else(|| uid.to_string())
}

fn parse_passwd(text: &str) -> Table {
    let mut table = HashMap::new();
    for line in text.lines() {
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(uid)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if let Ok(uid) = uid.parse() {
            // The first entry for a uid is the one `getpwuid` would give.
            table.entry(uid).or_insert_with(|| name.to_string());
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines_map_uids_to_the_first_name() {
        let table = parse_passwd("root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\n# note\nbad\n");
        assert_eq!(name_of(&table, 0), "root");
        assert_eq!(name_of(&table, 1000), "1000");
    }
}
