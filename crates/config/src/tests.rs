use std::path::Path;

use super::*;

fn parse_str(text: &str) -> Result<Config, ConfigError> {
    parse(Path::new("/etc/portcullis/portcullis.toml"), text)
}

#[test]
fn empty_file_gets_embedded_defaults() {
    let c = parse_str("").unwrap();
    assert_eq!(c.server.listen, "127.0.0.1:7070");
    assert_eq!(
        c.server.state_dir,
        Path::new("/etc/portcullis/portcullis-data")
    );
    assert_eq!(
        c.store_url(),
        "sqlite:///etc/portcullis/portcullis-data/state.db"
    );
    assert_eq!(c.policy.files, vec!["/etc/portcullis/policies/*.cedar"]);
    assert_eq!(c.dev_issuer_url(), "http://127.0.0.1:7070");
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let err = parse_str("[server]\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("/etc/portcullis/portcullis.toml:3:1:"),
        "{msg}"
    );
    assert!(msg.contains("unknown field `lisen`"), "{msg}");
}

#[test]
fn wrong_type_names_line() {
    let err = parse_str("[identity.dev_issuer]\nenabled = \"yes\"\n").unwrap_err();
    let ConfigError::Parse { line, message, .. } = err else {
        panic!("not a parse error")
    };
    assert_eq!(line, 2);
    assert!(message.contains("bool"), "{message}");
}

#[test]
fn relative_paths_follow_the_config_file() {
    let c = parse_str(
        "[server]\nstate_dir = \"data\"\n[store]\nurl = \"sqlite://data/x.db\"\n[policy]\nfiles = [\"p/*.cedar\"]\n",
    )
    .unwrap();
    assert_eq!(c.store_url(), "sqlite:///etc/portcullis/data/x.db");
    assert_eq!(c.policy.files, vec!["/etc/portcullis/p/*.cedar"]);
}

#[test]
fn the_issue_example_parses() {
    let text = r#"
[server]
listen = "127.0.0.1:7070"
state_dir = "portcullis-data"
[store]
url = "sqlite://portcullis-data/state.db"
[identity.dev_issuer]
enabled = true
[[identity.issuers]]
issuer = "https://idp.example.com"
audiences = ["portcullis"]
algorithms = ["RS256", "ES256"]
groups_claim = "groups"
max_token_lifetime = "1h"
[[identity.static_groups]]
client_id = "autogen-analyst"
groups = ["agents", "analysts"]
[policy]
files = ["policies/*.cedar"]
[[connections]]
name = "analytics"
kind = "postgres"
upstream = "127.0.0.1:5432"
database = "analytics"
user = "analytics_ro"
password = { env = "ANALYTICS_DB_PASSWORD" }
"#;
    let c = parse_str(text).unwrap();
    assert_eq!(c.identity.issuers[0].max_token_lifetime.as_secs(), 3600);
    assert_eq!(c.connections[0].kind, ConnectionKind::Postgres);
}

#[test]
fn check_lists_every_problem() {
    let text = r#"
[server]
listen = "nope"
[[identity.issuers]]
issuer = "http://idp.example.com"
audiences = []
algorithms = ["HS256", "none"]
[[identity.static_groups]]
groups = ["x"]
[[connections]]
name = "a b"
kind = "postgres"
upstream = "db"
password = { env = "PORTCULLIS_TEST_SURELY_UNSET_VAR" }
[[connections]]
name = "lit"
kind = "postgres"
upstream = "db:5432"
password = { value = "hunter2" }
"#;
    let c = parse_str(text).unwrap();
    let problems = c.check();
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let all = text.join("\n");
    for needle in [
        "server.listen",
        "identity.issuers[0].issuer",
        "identity.issuers[0].audiences",
        "`HS256` is not allowed",
        "`none` is not allowed",
        "identity.static_groups[0]",
        "connections[0].name",
        "connections[0].upstream",
        "PORTCULLIS_TEST_SURELY_UNSET_VAR is not set",
        "warning: connections[1].password",
        "matches no file",
    ] {
        assert!(all.contains(needle), "missing {needle} in:\n{all}");
    }
    assert!(!all.contains("hunter2"), "secret leaked: {all}");
}

#[test]
fn secrets_do_not_print() {
    let c = parse_str(
        "[[connections]]\nname='a'\nkind='postgres'\nupstream='h:1'\npassword={ value = 'hunter2' }\n",
    )
    .unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
    let v = c.connections[0]
        .password
        .as_ref()
        .unwrap()
        .resolve()
        .unwrap();
    assert_eq!(v.expose_secret(), "hunter2");
    assert!(!format!("{v:?}").contains("hunter2"));
}

#[test]
fn secret_from_file_is_anchored_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
    let cfg = dir.path().join("portcullis.toml");
    std::fs::write(
        &cfg,
        "[[connections]]\nname='a'\nkind='postgres'\nupstream='h:1'\npassword={ file = 'pw' }\n",
    )
    .unwrap();
    let c = load(&cfg).unwrap();
    let v = c.connections[0]
        .password
        .as_ref()
        .unwrap()
        .resolve()
        .unwrap();
    assert_eq!(v.expose_secret(), "s3cret");
}

#[test]
fn issuer_urls() {
    assert!(check::issuer_url_ok("https://idp.example.com").is_ok());
    assert!(check::issuer_url_ok("http://127.0.0.1:8080").is_ok());
    assert!(check::issuer_url_ok("http://localhost/realms/x").is_ok());
    assert!(check::issuer_url_ok("http://[::1]:9").is_ok());
    assert!(check::issuer_url_ok("http://10.0.0.1").is_err());
    assert!(check::issuer_url_ok("ftp://x").is_err());
}

#[test]
fn masking_profiles_translate_and_their_mistakes_are_named() {
    let c = parse_str(
        r#"
[masking.profiles.support]
entities = ["EMAIL", "CREDIT_CARD"]
strategy = "partial"
keep = 2
strategies = { EMAIL = "redact", CREDIT_CARD = "partial:4" }
builtin_columns = false
columns = [{ name = "*notes*", entity = "GENERIC_SECRET" }, { type = "INET", entity = "IPV4" }]
"#,
    )
    .unwrap();
    let profiles = c.masking.profiles().unwrap();
    assert!(
        profiles.contains_key("default"),
        "the built-in profile is always there"
    );
    let support = &profiles["support"];
    assert_eq!(support.entities.len(), 2);
    assert_eq!(support.columns.len(), 2);
    assert_eq!(
        support.default_strategy,
        portcullis_masking::Strategy::Partial { keep: 2 }
    );
    let masking_problems: Vec<_> = c
        .check()
        .into_iter()
        .filter(|p| p.location.starts_with("masking"))
        .collect();
    assert!(masking_problems.is_empty(), "{masking_problems:?}");

    let bad = parse_str(
        r#"
[masking.profiles.p]
entities = ["EMAIL", "SHOE_SIZE"]
strategy = "shred"
strategies = { EMAIL = "hmac" }
columns = [{ entity = "EMAIL" }]
[[connections]]
name = "db"
kind = "postgres"
upstream = "127.0.0.1:5432"
database = "d"
user = "u"
masking = "nosuch"
"#,
    )
    .unwrap();
    let problems: Vec<String> = bad.check().iter().map(ToString::to_string).collect();
    let all = problems.join("\n");
    for needle in [
        "masking.profiles.p.entities",
        "SHOE_SIZE",
        "masking.profiles.p.strategy",
        "shred",
        "masking.profiles.p.columns[0]",
    ] {
        assert!(all.contains(needle), "{needle} missing from:\n{all}");
    }
    // Once the profiles are fixed, the dangling connection profile and the missing HMAC key
    // are what remains.
    let fixed = parse_str(
        r#"
[masking.profiles.p]
strategies = { EMAIL = "hmac" }
[[connections]]
name = "db"
kind = "postgres"
upstream = "127.0.0.1:5432"
database = "d"
user = "u"
masking = "nosuch"
"#,
    )
    .unwrap();
    let all: Vec<String> = fixed.check().iter().map(ToString::to_string).collect();
    let all = all.join("\n");
    assert!(
        all.contains("connections[0].masking") && all.contains("nosuch"),
        "{all}"
    );
    assert!(all.contains("masking.hmac_key"), "{all}");
}

#[test]
fn exec_limits_default_and_are_checked() {
    let c = parse_str("").unwrap();
    assert_eq!((c.exec.max_rows, c.exec.max_bytes), (1000, 1 << 20));
    let c = parse_str("[exec]\nmax_rows = 50\nmax_bytes = 4096\n").unwrap();
    assert_eq!((c.exec.max_rows, c.exec.max_bytes), (50, 4096));
    let c = parse_str("[exec]\nmax_rows = 0\n").unwrap();
    assert!(
        c.check().iter().any(|p| p.to_string().contains("exec")),
        "{:?}",
        c.check()
    );
}

#[test]
fn postgres_pool_defaults_and_parses() {
    let c = parse_str("").unwrap();
    assert_eq!(c.postgres.pool_size, 8);
    assert_eq!(c.postgres.pool_idle, std::time::Duration::from_secs(60));
    let c = parse_str("[postgres]\npool_size = 0\npool_idle = \"5s\"\n").unwrap();
    assert_eq!(c.postgres.pool_size, 0);
    assert_eq!(c.postgres.pool_idle, std::time::Duration::from_secs(5));
}

#[test]
fn postgres_limits_default_parse_and_are_bounded() {
    use std::time::Duration;
    let c = parse_str("").unwrap();
    let pg = &c.postgres;
    assert_eq!(
        (
            pg.max_sessions_per_principal,
            pg.max_sessions_per_connection,
            pg.max_server_connections,
            pg.max_pipeline_depth
        ),
        (100, 500, 50, 10_000)
    );
    assert_eq!(pg.server_connection_wait, Duration::from_secs(10));
    assert_eq!(pg.message_timeout, Duration::from_secs(30));
    assert_eq!(pg.idle_session_timeout, Duration::from_secs(3600));
    assert_eq!(pg.idle_in_transaction_timeout, Duration::from_secs(600));
    assert!(
        !c.check().iter().any(|p| p.location.starts_with("postgres")),
        "{:?}",
        c.check()
    );

    let c = parse_str(
        "[postgres]\nmax_sessions_per_principal = 2\nmax_sessions_per_connection = 3\n\
         max_server_connections = 1\nserver_connection_wait = \"500ms\"\n\
         message_timeout = \"1s\"\nidle_session_timeout = \"2s\"\n\
         idle_in_transaction_timeout = \"1s\"\nmax_pipeline_depth = 5\npool_size = 1\n",
    )
    .unwrap();
    let pg = &c.postgres;
    assert_eq!(
        (
            pg.max_sessions_per_principal,
            pg.max_sessions_per_connection,
            pg.max_server_connections,
            pg.max_pipeline_depth
        ),
        (2, 3, 1, 5)
    );
    assert_eq!(pg.server_connection_wait, Duration::from_millis(500));
    assert_eq!(pg.idle_session_timeout, Duration::from_secs(2));

    // Zero and absurd values are refused with the line, as a wrong type is.
    for (text, needle) in [
        (
            "max_sessions_per_principal = 0",
            "0 is out of range: use 1 to 100000",
        ),
        ("max_sessions_per_connection = 1000000", "use 1 to 100000"),
        ("max_server_connections = 0", "use 1 to 10000"),
        ("max_pipeline_depth = 0", "use 1 to 1000000"),
        (
            "server_connection_wait = \"0s\"",
            "out of range: use 1ms to 10m",
        ),
        ("message_timeout = \"10ms\"", "use 100ms to 1h"),
        ("idle_session_timeout = \"0s\"", "use 1s to 30days"),
        ("idle_in_transaction_timeout = \"2days\"", "use 1s to 1day"),
        ("message_timeout = \"soon\"", ""),
    ] {
        let err = parse_str(&format!("[postgres]\nenabled = true\n{text}\n")).unwrap_err();
        let ConfigError::Parse { line, message, .. } = &err else {
            panic!("not a parse error: {err}")
        };
        assert_eq!(*line, 3, "{text}: {err}");
        assert!(message.contains(needle), "{text}: {message}");
    }
}

#[test]
fn postgres_limits_that_cannot_be_reached_warn() {
    let c = parse_str(
        "[postgres]\nmax_sessions_per_principal = 600\nmax_server_connections = 4\npool_size = 8\n",
    )
    .unwrap();
    let all: Vec<String> = c.check().iter().map(ToString::to_string).collect();
    let all = all.join("\n");
    assert!(
        all.contains("warning: postgres.max_sessions_per_principal: 600 is above"),
        "{all}"
    );
    assert!(
        all.contains("warning: postgres.pool_size: 8 is above"),
        "{all}"
    );
}

#[test]
fn audit_durability_defaults_to_fsync_and_takes_crash_with_a_bounded_interval() {
    let c = parse_str("").unwrap();
    assert_eq!(c.audit.durability, Durability::Fsync);
    assert_eq!(c.audit.sync_every, std::time::Duration::from_millis(100));
    let c = parse_str("[audit]\ndurability = \"crash\"\nsync_every = \"250ms\"\n").unwrap();
    assert_eq!(c.audit.durability, Durability::Crash);
    assert_eq!(c.audit.sync_every, std::time::Duration::from_millis(250));
    let err = parse_str("[audit]\ndurability = \"sometimes\"\n").unwrap_err();
    assert!(err.to_string().contains(":2:"), "{err}");
    let err = parse_str("[audit]\nsync_every = \"1h\"\n").unwrap_err();
    assert!(err.to_string().contains(":2:"), "{err}");
}
