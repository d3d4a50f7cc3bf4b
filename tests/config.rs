//! Configuration: defaults without a file, and every bad file names the key and the line.

use std::process::Command;

use systemmanager::config::{self, ConfigError};

/// Parses `text` and returns the key, line and message of the error it must produce.
fn invalid(text: &str) -> (String, usize, String) {
    match config::parse(text, "test.toml") {
        Err(ConfigError::Invalid {
            key, line, message, ..
        }) => (key, line, message),
        Err(other) => panic!("expected an invalid-config error, got {other}"),
        Ok(_) => panic!("expected an error for:\n{text}"),
    }
}

#[test]
fn an_empty_file_means_the_defaults() {
    let parsed = config::parse("", "empty.toml").expect("empty is valid");
    assert_eq!(parsed.to_toml(), config::Config::default().to_toml());
    assert_eq!(parsed.limits.call_timeout_seconds.get(), 30);
    assert_eq!(parsed.limits.max_request_bytes.get(), 1024 * 1024);
}

#[test]
fn the_effective_configuration_round_trips() {
    let text = "[log]\nlevel = \"debug\"\nformat = \"json\"\n\n[http]\nallowed_hosts = [\"mcp.example.com\", \"localhost:8080\"]\nallowed_origins = [\"https://app.example.com\", \"http://localhost:*\"]\n\n[limits]\ncall_timeout_seconds = 5\n";
    let parsed = config::parse(text, "t.toml").expect("valid");
    let printed = parsed.to_toml();
    let reparsed = config::parse(&printed, "printed.toml").expect("printed config is valid");
    assert_eq!(reparsed.to_toml(), printed);
    assert!(
        printed.contains("\"https://app.example.com:443\""),
        "{printed}"
    );
    assert_eq!(reparsed.limits.call_timeout_seconds.get(), 5);
}

#[test]
fn an_unknown_section_is_named() {
    let (key, line, message) = invalid("[log]\nlevel = \"info\"\n\n[htpp]\nallowed_hosts = []\n");
    assert_eq!(key, "htpp");
    assert_eq!(line, 4);
    assert!(message.contains("unknown field `htpp`"), "{message}");
}

#[test]
fn an_unknown_key_in_a_section_is_named_with_its_section() {
    let (key, line, message) = invalid("[http]\nallowed_origins = []\nallowed_host = [\"x\"]\n");
    assert_eq!(key, "http.allowed_host");
    assert_eq!(line, 3);
    assert!(
        message.contains("`allowed_hosts`"),
        "the message names the valid keys: {message}"
    );
}

#[test]
fn a_value_of_the_wrong_type_is_named() {
    let (key, line, message) = invalid("[limits]\n\ncall_timeout_seconds = \"thirty\"\n");
    assert_eq!(key, "limits.call_timeout_seconds");
    assert_eq!(line, 3);
    assert!(message.contains("invalid type"), "{message}");
}

#[test]
fn a_value_out_of_range_says_the_range() {
    let (key, line, message) = invalid("[limits]\nmax_output_bytes = 10\n");
    assert_eq!(key, "limits.max_output_bytes");
    assert_eq!(line, 2);
    assert!(
        message.contains("must be between 1024 and 16777216"),
        "{message}"
    );

    let (key, _, message) = invalid("[limits]\ncall_timeout_seconds = -5\n");
    assert_eq!(key, "limits.call_timeout_seconds");
    assert!(message.contains("-5 is out of range"), "{message}");
}

#[test]
fn an_unknown_log_level_lists_the_valid_ones() {
    let (key, line, message) = invalid("[log]\nlevel = \"loud\"\n");
    assert_eq!(key, "log.level");
    assert_eq!(line, 2);
    assert!(
        message.contains("unknown variant `loud`") && message.contains("debug"),
        "{message}"
    );
}

#[test]
fn a_malformed_origin_is_named_with_its_index() {
    let (key, line, message) =
        invalid("[http]\nallowed_origins = [\n  \"https://ok.example\",\n  \"evil\",\n]\n");
    assert_eq!(key, "http.allowed_origins[1]");
    // The line of the key; TOML reports the whole array as the bad value.
    assert_eq!(line, 2);
    assert!(message.contains("`evil` is not an origin"), "{message}");
}

#[test]
fn a_syntax_error_names_the_line() {
    let (key, line, _) = invalid("[limits]\ncall_timeout_seconds = 30\nmax_output_bytes = = 5\n");
    assert_eq!(line, 3);
    assert_eq!(key, "max_output_bytes");
}

#[test]
fn a_section_of_the_wrong_type_is_named() {
    let (key, line, message) = invalid("log = 5\n");
    assert_eq!(key, "log");
    assert_eq!(line, 1);
    assert!(message.contains("invalid type"), "{message}");
}

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_systemmanager"));
    command.env_remove("SYSTEMMANAGER_CONFIG");
    command
}

#[test]
fn config_check_prints_the_effective_configuration() {
    let output = binary().args(["config", "check"]).output().expect("run");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Whether /etc/systemmanager/config.toml exists decides the source; the defaults show either
    // way on a machine without one.
    assert!(
        stdout.starts_with("# configuration OK; source: "),
        "{stdout}"
    );
    assert!(
        stdout.contains("[limits]") && stdout.contains("call_timeout_seconds"),
        "{stdout}"
    );
}

#[test]
fn config_check_reports_a_bad_file_and_exits_2() {
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join("bad.toml");
    std::fs::write(&path, "[limits]\ncall_timeout_seconds = 0\n").expect("write");
    let output = binary()
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:2: `limits.call_timeout_seconds`",
            path.display()
        )) && stderr.contains("must be between 1 and 3600"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn the_flag_wins_over_the_environment() {
    let directory = tempfile::tempdir().expect("tempdir");
    let from_flag = directory.path().join("flag.toml");
    let from_env = directory.path().join("env.toml");
    std::fs::write(&from_flag, "[limits]\ncall_timeout_seconds = 7\n").expect("write");
    std::fs::write(&from_env, "[limits]\ncall_timeout_seconds = 9\n").expect("write");

    let output = binary()
        .env("SYSTEMMANAGER_CONFIG", &from_env)
        .args(["config", "check"])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("call_timeout_seconds = 9"), "{stdout}");
    assert!(stdout.contains("$SYSTEMMANAGER_CONFIG"), "{stdout}");

    let output = binary()
        .env("SYSTEMMANAGER_CONFIG", &from_env)
        .args(["config", "check", "--config"])
        .arg(&from_flag)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("call_timeout_seconds = 7"), "{stdout}");
}

#[test]
fn a_missing_file_named_by_the_flag_is_an_error() {
    let output = binary()
        .args([
            "config",
            "check",
            "--config",
            "/nonexistent/systemmanager.toml",
        ])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read config file /nonexistent/systemmanager.toml"),
        "{stderr}"
    );
}

#[test]
fn the_documented_example_is_valid_and_shows_the_defaults() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/config.example.toml");
    let text = std::fs::read_to_string(path).expect("docs/config.example.toml");
    let parsed = config::parse(&text, path).expect("the example must be valid");
    assert_eq!(
        parsed.to_toml(),
        config::Config::default().to_toml(),
        "docs/config.example.toml must list exactly the built-in defaults"
    );
}

#[test]
fn an_unknown_local_role_is_named_at_its_line() {
    let (key, line, message) =
        invalid("[log]\nlevel = \"info\"\n\n[security]\nlocal_role = \"superuser\"\n");
    assert_eq!(key, "security.local_role");
    assert_eq!(line, 5);
    assert!(
        message.contains("no role is named `superuser`"),
        "{message}"
    );
}

#[test]
fn a_custom_role_refers_to_its_own_definition() {
    let text = "[security]\nlocal_role = \"auditor\"\n\n[roles.auditor]\ntiers = [\"read\"]\nallow = [\"system_*\"]\n";
    let parsed = config::parse(text, "t.toml").expect("a defined custom role is fine");
    assert_eq!(parsed.security.local_role, "auditor");
}

#[test]
fn built_in_roles_cannot_be_redefined() {
    let (key, line, message) = invalid("[roles.viewer]\ntiers = [\"read\", \"admin\"]\n");
    assert_eq!(key, "roles.viewer");
    assert_eq!(line, 1);
    assert!(message.contains("built-in role"), "{message}");
}

#[test]
fn a_role_needs_a_tier_and_valid_globs() {
    let (key, line, _) = invalid("[roles.nobody]\n\ntiers = []\n");
    assert_eq!(key, "roles.nobody.tiers");
    assert_eq!(line, 3);
    let (key, _, message) = invalid("[roles.odd]\ntiers = [\"read\"]\ndeny = [\"docker_[\"]\n");
    assert_eq!(key, "roles.odd.deny[0]");
    assert!(message.contains("not a valid tool-name glob"), "{message}");
    let (key, _, message) = invalid("[roles.odd]\ntiers = [\"root\"]\n");
    assert_eq!(key, "roles.odd.tiers[0]");
    assert!(message.contains("unknown variant `root`"), "{message}");
}

#[test]
fn tls_settings_are_checked_together() {
    let (key, line, message) = invalid("[log]\nlevel = \"info\"\n[tls]\ncert = \"/x.pem\"\n");
    assert_eq!(
        (key.as_str(), line),
        ("tls.key", 3),
        "the line of the [tls] table"
    );
    assert!(message.contains("both `cert` and `key`"), "{message}");
    let (key, _, _) = invalid("[tls]\nclient_ca = \"/ca.pem\"\n");
    assert_eq!(key, "tls.client_ca");
    let (key, line, message) = invalid(
        "[tls]\ncert = \"/c\"\nkey = \"/k\"\nclient_ca = \"/ca\"\n[tls.client_roles]\nlaptop = \"superuser\"\n",
    );
    assert_eq!((key.as_str(), line), ("tls.client_roles.laptop", 6));
    assert!(
        message.contains("no role is named `superuser`"),
        "{message}"
    );
}

#[test]
fn tailscale_identity_needs_a_way_to_give_roles() {
    let (key, line, message) = invalid("[tailscale]\nenabled = true\n");
    assert_eq!((key.as_str(), line), ("tailscale.enabled", 2));
    assert!(message.contains("`capability`"), "{message}");
    let (key, _, _) = invalid("[tailscale]\nservice = \"systemmanager\"\ncapability = \"x/y\"\n");
    assert_eq!(key, "tailscale.service");
    let (key, _, _) = invalid("[tailscale.logins]\n\"a@b\" = \"root\"\n");
    assert_eq!(key, "tailscale.logins.a@b");
}
