//! `systemmanager token create | list | revoke`.

use std::io::Write;

use chrono::{DateTime, Utc};

use crate::auth::tokens;
use crate::config::Config;
use crate::gate::Policy;

fn when(moment: Option<DateTime<Utc>>, none: &str) -> String {
    moment.map_or_else(
        || none.to_string(),
        |moment| moment.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// Creates a token; the secret goes to `out` alone (so `$(...)` captures it), the explanation to
/// `note`.
pub fn create(
    config: &Config,
    name: &str,
    role: &str,
    expires: &str,
    out: &mut dyn Write,
    note: &mut dyn Write,
) -> anyhow::Result<()> {
    let policy = Policy::from_config(config);
    anyhow::ensure!(
        policy.role(role).is_some(),
        "no role is named `{role}`: use viewer, operator, admin or a role defined in [roles]"
    );
    let lifetime = tokens::parse_lifetime(expires)?;
    let path = config.security.token_file();
    let (secret, record) = tokens::create(&path, name, role, lifetime)?;
    writeln!(out, "{secret}")?;
    writeln!(
        note,
        "Created token `{}` (role {}, expires {}) in {}.\n\
         The secret above is shown only now: store it in the client's configuration.\n\
         Clients send it as the header `Authorization: Bearer <secret>`.",
        record.name,
        record.role,
        when(record.expires, "never"),
        path.display()
    )?;
    Ok(())
}

/// Lists tokens (never secrets).
pub fn list(config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let path = config.security.token_file();
    let listed = tokens::list(&path)?;
    if listed.is_empty() {
        writeln!(
            out,
            "no tokens in {}; create one with `systemmanager token create --name NAME --role viewer`",
            path.display()
        )?;
        return Ok(());
    }
    let now = Utc::now();
    let rows: Vec<[String; 6]> = listed
        .into_iter()
        .map(|(record, used)| {
            let status = if record.revoked.is_some() {
                "revoked"
            } else if record.expires.is_some_and(|at| at <= now) {
                "expired"
            } else {
                "active"
            };
            [
                record.name,
                record.role,
                when(Some(record.created), ""),
                when(record.expires, "never"),
                when(used, "never"),
                status.to_string(),
            ]
        })
        .collect();
    let header = ["NAME", "ROLE", "CREATED", "EXPIRES", "LAST USED", "STATUS"];
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].len())
                .chain([header[column].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[&str]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    writeln!(out, "{}", line(&header))?;
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        writeln!(out, "{}", line(&cells))?;
    }
    Ok(())
}

/// Revokes a token.
pub fn revoke(config: &Config, name: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let record = tokens::revoke(&config.security.token_file(), name)?;
    writeln!(
        out,
        "Revoked token `{}` (role {}). Running servers refuse it within a second.",
        record.name, record.role
    )?;
    Ok(())
}
