//! Names that say their value is a secret (`DB_PASSWORD`, `api-key`, `Authorization`): the
//! audit log and the tools that show environments and arguments hide such values.

/// Whether a key names a secret: the whole key, or one of its `_`/`-`-separated words.
pub(crate) fn is_secret_key(key: &str) -> bool {
    const WORDS: [&str; 10] = [
        "password",
        "passwd",
        "secret",
        "token",
        "credential",
        "credentials",
        "auth",
        "authorization",
        "cookie",
        "key",
    ];
    let lower = key.to_ascii_lowercase();
    lower
        .split(['_', '-', '.'])
        .any(|word| WORDS.contains(&word) || word.ends_with("password") || word.ends_with("secret"))
        || matches!(
            lower.as_str(),
            "apikey" | "privatekey" | "accesskey" | "secretkey"
        )
}
