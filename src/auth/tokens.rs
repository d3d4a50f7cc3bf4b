//! Bearer tokens: created by `systemmanager token create`, stored only as SHA-256 hashes,
//! checked by the HTTP transport.
//!
//! A secret is `smgr_` followed by 32 random bytes in base64url (the prefix lets secret scanners
//! recognise a leak). Its hash is enough to store: a 256-bit secret cannot be guessed, so no slow
//! password hash is needed. Presented tokens are compared against every stored hash in constant
//! time. The token file is written atomically with mode 0600 under an advisory lock, and the
//! server notices changes (a revocation) within a second. When each token was last used is kept
//! in a second file the server alone writes, so it never races the command line.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The prefix of every secret.
pub const PREFIX: &str = "smgr_";
/// Length of a whole secret: the prefix and 32 bytes in unpadded base64url.
const SECRET_LEN: usize = PREFIX.len() + 43;
/// How often the server looks at the token file for changes.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// One token as stored: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub name: String,
    pub role: String,
    /// SHA-256 of the secret, hex.
    pub sha256: String,
    pub created: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    version: u32,
    tokens: Vec<TokenRecord>,
}

/// Why a presented token was refused. The text is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the bearer token is not a SystemManager token (they start with `{PREFIX}`)")]
    Malformed,
    #[error("the bearer token is not known to this server")]
    Unknown,
    #[error("the token `{name}` expired at {}", .at.format("%Y-%m-%dT%H:%M:%SZ"))]
    Expired { name: String, at: DateTime<Utc> },
    #[error("the token `{name}` was revoked at {}", .at.format("%Y-%m-%dT%H:%M:%SZ"))]
    Revoked { name: String, at: DateTime<Utc> },
}

/// A token that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub name: String,
    pub role: String,
}

struct Loaded {
    tokens: Vec<(TokenRecord, [u8; 32])>,
    modified: Option<SystemTime>,
    checked: Instant,
}

/// The server's view of the token file.
pub struct TokenStore {
    path: PathBuf,
    loaded: RwLock<Loaded>,
    last_used: Mutex<LastUsed>,
}

#[derive(Default)]
struct LastUsed {
    times: BTreeMap<String, DateTime<Utc>>,
    dirty: bool,
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn decode_hash(hex_text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(hex_text).ok()?;
    bytes.try_into().ok()
}

impl TokenStore {
    /// Opens the token file at `path`; a missing file means no tokens yet.
    pub fn open(path: &Path) -> io::Result<Self> {
        let (tokens, modified) = read_tokens(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            loaded: RwLock::new(Loaded {
                tokens: hashed(tokens),
                modified,
                checked: Instant::now(),
            }),
            last_used: Mutex::new(LastUsed::default()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tokens that are neither revoked nor expired.
    pub fn active_count(&self) -> usize {
        let now = Utc::now();
        self.read_loaded()
            .tokens
            .iter()
            .filter(|(record, _)| {
                record.revoked.is_none() && record.expires.is_none_or(|at| at > now)
            })
            .count()
    }

    /// Checks a presented secret.
    pub fn authenticate(&self, presented: &str) -> Result<Authenticated, Rejection> {
        self.reload_if_changed();
        if !presented.starts_with(PREFIX) || presented.len() != SECRET_LEN {
            return Err(Rejection::Malformed);
        }
        let presented = digest(presented);
        let loaded = self.read_loaded();
        // Compare with every stored hash, without stopping at a match.
        let mut found = None;
        for (record, hash) in &loaded.tokens {
            if bool::from(hash.ct_eq(&presented)) {
                found = Some(record);
            }
        }
        let record = found.ok_or(Rejection::Unknown)?;
        let now = Utc::now();
        if let Some(at) = record.revoked {
            return Err(Rejection::Revoked {
                name: record.name.clone(),
                at,
            });
        }
        if let Some(at) = record.expires.filter(|at| *at <= now) {
            return Err(Rejection::Expired {
                name: record.name.clone(),
                at,
            });
        }
        let authenticated = Authenticated {
            name: record.name.clone(),
            role: record.role.clone(),
        };
        drop(loaded);
        if let Ok(mut last_used) = self.last_used.lock() {
            last_used.times.insert(authenticated.name.clone(), now);
            last_used.dirty = true;
        }
        Ok(authenticated)
    }

    fn read_loaded(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Rereads the file when it changed (at most once per [`RELOAD_INTERVAL`]).
    fn reload_if_changed(&self) {
        if self.read_loaded().checked.elapsed() < RELOAD_INTERVAL {
            return;
        }
        let mut loaded = self
            .loaded
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if loaded.checked.elapsed() < RELOAD_INTERVAL {
            return;
        }
        loaded.checked = Instant::now();
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if modified == loaded.modified {
            return;
        }
        match read_tokens(&self.path) {
            Ok((tokens, modified)) => {
                tracing::info!(path = %self.path.display(), tokens = tokens.len(), "token file reloaded");
                loaded.tokens = hashed(tokens);
                loaded.modified = modified;
            }
            // Keep the tokens we had rather than lock everyone out over a bad edit.
            Err(error) => {
                tracing::error!(path = %self.path.display(), %error, "cannot reload the token file")
            }
        }
    }

    /// Writes when tokens were last used (the server calls this now and then, and at exit).
    pub fn flush_last_used(&self) -> io::Result<()> {
        let times = {
            let Ok(mut last_used) = self.last_used.lock() else {
                return Ok(());
            };
            if !last_used.dirty {
                return Ok(());
            }
            last_used.dirty = false;
            last_used.times.clone()
        };
        let path = last_used_path(&self.path);
        let mut merged = read_last_used(&path);
        merged.extend(times);
        let text = serde_json::to_vec_pretty(&merged).map_err(io::Error::other)?;
        crate::state_file::replace(&path, &text)
    }
}

fn hashed(tokens: Vec<TokenRecord>) -> Vec<(TokenRecord, [u8; 32])> {
    tokens
        .into_iter()
        .filter_map(|record| {
            let hash = decode_hash(&record.sha256);
            if hash.is_none() {
                tracing::warn!(token = record.name, "token has a malformed hash; ignored");
            }
            hash.map(|hash| (record, hash))
        })
        .collect()
}

fn read_tokens(path: &Path) -> io::Result<(Vec<TokenRecord>, Option<SystemTime>)> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(error) => return Err(error),
    };
    let metadata = std::fs::metadata(path)?;
    if metadata.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            "the token file is readable by others; `chmod 600` it"
        );
    }
    let file: TokenFile = serde_json::from_slice(&text).map_err(|error| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a token file: {error}", path.display()),
        )
    })?;
    Ok((file.tokens, metadata.modified().ok()))
}

/// Where the server records when each token was last used: beside the token file.
pub fn last_used_path(token_file: &Path) -> PathBuf {
    let name = token_file
        .file_stem()
        .map(|stem| format!("{}.last-used.json", stem.to_string_lossy()))
        .unwrap_or_else(|| "tokens.last-used.json".into());
    token_file.with_file_name(name)
}

fn read_last_used(path: &Path) -> BTreeMap<String, DateTime<Utc>> {
    std::fs::read(path)
        .ok()
        .and_then(|text| serde_json::from_slice(&text).ok())
        .unwrap_or_default()
}

/// Runs `change` on the token file's contents under an exclusive lock and writes the result.
fn update<T>(
    path: &Path,
    change: impl FnOnce(&mut TokenFile) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let lock_path = path.with_extension("lock");
    if let Some(directory) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !directory.exists()
    {
        std::fs::create_dir_all(directory)?;
        std::fs::set_permissions(directory, std::fs::Permissions::from_mode(0o700))?;
    }
    let lock = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)?;
    // Root running `token create` in a service user's state directory: the lock stays usable
    // by that user, like the token file itself.
    if let Some(directory) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::state_file::hand_to_directory_owner(&lock, directory)?;
    }
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
    let (tokens, _) = read_tokens(path)?;
    let mut file = TokenFile { version: 1, tokens };
    let result = change(&mut file)?;
    let mut text = serde_json::to_vec_pretty(&file)?;
    text.push(b'\n');
    crate::state_file::replace(path, &text)?;
    Ok(result)
}

/// A token name: letters, digits, `.`, `_` and `-`, at most 64.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    anyhow::ensure!(
        valid,
        "`{name}` is not a token name: use 1-64 letters, digits, `.`, `_` or `-`"
    );
    Ok(())
}

/// Creates a token; returns its secret (the only time it exists outside the client).
pub fn create(
    path: &Path,
    name: &str,
    role: &str,
    lifetime: Option<Duration>,
) -> anyhow::Result<(String, TokenRecord)> {
    check_name(name)?;
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
    let secret = format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    );
    let now = Utc::now();
    let record = TokenRecord {
        name: name.to_string(),
        role: role.to_string(),
        sha256: hex::encode(digest(&secret)),
        created: now,
        expires: lifetime.map(|lifetime| {
            now + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::MAX)
        }),
        revoked: None,
    };
    update(path, |file| {
        anyhow::ensure!(
            !file.tokens.iter().any(|token| token.name == name),
            "a token named `{name}` exists already; revoke it or choose another name"
        );
        file.tokens.push(record.clone());
        Ok(())
    })?;
    Ok((secret, record))
}

/// Every token, with when it was last used.
pub fn list(path: &Path) -> anyhow::Result<Vec<(TokenRecord, Option<DateTime<Utc>>)>> {
    let (tokens, _) = read_tokens(path)?;
    let last_used = read_last_used(&last_used_path(path));
    Ok(tokens
        .into_iter()
        .map(|record| {
            let used = last_used.get(&record.name).copied();
            (record, used)
        })
        .collect())
}

/// Revokes a token: it stays listed, and every server refuses it from then on.
pub fn revoke(path: &Path, name: &str) -> anyhow::Result<TokenRecord> {
    update(path, |file| {
        let record = file
            .tokens
            .iter_mut()
            .find(|token| token.name == name)
            .ok_or_else(|| anyhow::anyhow!("no token is named `{name}`"))?;
        anyhow::ensure!(
            record.revoked.is_none(),
            "the token `{name}` is revoked already"
        );
        record.revoked = Some(Utc::now());
        Ok(record.clone())
    })
}

/// Parses a lifetime such as `30d`, `12h`, `90m`; `never` is none.
pub fn parse_lifetime(text: &str) -> anyhow::Result<Option<Duration>> {
    if text == "never" {
        return Ok(None);
    }
    let invalid = || anyhow::anyhow!("`{text}` is not a lifetime: use e.g. 30d, 12h, 90m or never");
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        _ => return Err(invalid()),
    };
    anyhow::ensure!(number > 0, "a token must live at least a minute");
    Ok(Some(Duration::from_secs(number.saturating_mul(seconds))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_token_authenticates_and_only_its_hash_is_stored() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("state/tokens.json");
        let (secret, record) = create(&path, "ci", "viewer", None).expect("create");
        assert!(secret.starts_with("smgr_") && secret.len() == SECRET_LEN);
        let stored = std::fs::read_to_string(&path).expect("read");
        assert!(
            !stored.contains(&secret[PREFIX.len()..]),
            "the secret must not be stored"
        );
        assert!(stored.contains(&record.sha256));
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let store = TokenStore::open(&path).expect("open");
        assert_eq!(
            store.authenticate(&secret),
            Ok(Authenticated {
                name: "ci".into(),
                role: "viewer".into()
            })
        );
        let mut wrong = secret.clone();
        wrong.replace_range(10..11, if &secret[10..11] == "A" { "B" } else { "A" });
        assert_eq!(store.authenticate(&wrong), Err(Rejection::Unknown));
        assert_eq!(store.authenticate("hunter2"), Err(Rejection::Malformed));
    }

    #[test]
    fn names_are_unique_and_revocation_sticks() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("tokens.json");
        let (secret, _) = create(&path, "ci", "viewer", None).expect("create");
        assert!(create(&path, "ci", "admin", None).is_err());
        revoke(&path, "ci").expect("revoke");
        assert!(revoke(&path, "ci").is_err());
        let store = TokenStore::open(&path).expect("open");
        assert!(matches!(
            store.authenticate(&secret),
            Err(Rejection::Revoked { .. })
        ));
        assert_eq!(store.active_count(), 0);
    }

    #[test]
    fn lifetimes_parse() {
        assert_eq!(
            parse_lifetime("30d").expect("30d"),
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(
            parse_lifetime("12h").expect("12h"),
            Some(Duration::from_secs(12 * 3_600))
        );
        assert_eq!(parse_lifetime("never").expect("never"), None);
        assert!(parse_lifetime("0m").is_err());
        assert!(parse_lifetime("soon").is_err());
        assert!(parse_lifetime("5y").is_err());
    }

    #[test]
    fn last_used_is_written_beside_the_token_file() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("tokens.json");
        let (secret, _) = create(&path, "ci", "viewer", None).expect("create");
        let store = TokenStore::open(&path).expect("open");
        store.authenticate(&secret).expect("valid");
        store.flush_last_used().expect("flush");
        let listed = list(&path).expect("list");
        assert!(listed[0].1.is_some());
        assert_eq!(
            last_used_path(&path),
            directory.path().join("tokens.last-used.json")
        );
    }
}
