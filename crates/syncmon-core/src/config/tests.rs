use super::*;
use std::time::Duration;

const MINIMAL: &str = r#"
[[connection]]
id = "retail-prod"
base_url = "https://api.example.com/tenant/prod/company"
auth = "oauth2"
token_url = "https://login.example.com/oauth2/token"
client_id = "syncmon"

[[connection.entity]]
name = "items"
poll_every = "5m"
full_resync_every = "24h"
"#;

#[test]
fn the_design_example_parses_with_defaults() {
    let c = Config::parse(MINIMAL).unwrap();
    let conn = &c.connections[0];
    assert_eq!(conn.max_concurrency, 5);
    assert_eq!(conn.profile, ProfileKind::Rowversion);
    assert_eq!(conn.entities[0].path(), "/items");
    assert_eq!(conn.entities[0].page_size, 1000);
    assert_eq!(conn.entities[0].full_resync_every, Some(Duration::from_secs(86400)));
    assert_eq!(conn.lookback, Duration::from_secs(600));
}

#[test]
fn a_plaintext_secret_is_refused_with_its_line() {
    let text = format!("{MINIMAL}client_secret = \"hunter2\"\n");
    let err = Config::parse(&text).unwrap_err().to_string();
    assert!(err.contains("line 13"), "{err}");
    assert!(err.contains("syncmon creds set"), "the error must say what to do: {err}");
    assert!(!err.contains("hunter2"), "the error must not echo the secret: {err}");
}

#[test]
fn a_typo_names_the_line_and_the_expected_fields() {
    let err = Config::parse("[[connection]]\nid = \"a\"\nbase_url = \"http://x\"\npoll_evry = \"5m\"\n").unwrap_err().to_string();
    assert!(err.contains("line 4"), "{err}");
    assert!(err.contains("poll_evry"), "{err}");
}

#[test]
fn a_bad_duration_says_how_to_write_one() {
    let err = Config::parse(&MINIMAL.replace("\"5m\"", "\"five minutes\"")).unwrap_err().to_string();
    assert!(err.contains("e.g. \"30s\""), "{err}");
}

#[test]
fn oauth2_without_a_token_url_is_refused() {
    let err = Config::parse(&MINIMAL.replace("token_url = \"https://login.example.com/oauth2/token\"\n", "")).unwrap_err().to_string();
    assert!(err.contains("token_url"), "{err}");
}

#[test]
fn the_cursor_profile_needs_one_way_to_page() {
    let text = "[[connection]]\nid = \"a\"\nbase_url = \"http://127.0.0.1:1\"\nprofile = \"cursor\"\n[connection.cursor]\nfilter_param = \"since\"\n";
    assert!(Config::parse(text).unwrap_err().to_string().contains("exactly one way"));
    let ok = format!("{text}next = \"link-header\"\n");
    Config::parse(&ok).unwrap();
}

#[test]
fn duplicate_ids_and_bad_names_are_refused() {
    let two = "[[connection]]\nid = \"a\"\nbase_url = \"http://x\"\n[[connection]]\nid = \"a\"\nbase_url = \"http://y\"\n";
    assert!(Config::parse(two).unwrap_err().to_string().contains("unique"));
    let bad = "[[connection]]\nid = \"a b\"\nbase_url = \"http://x\"\n";
    assert!(Config::parse(bad).unwrap_err().to_string().contains("letters"));
}

const FORWARDING: &str = r#"
[[target]]
id = "erp"
base_url = "https://erp.example.com/api"
auth = "api_key"
max_concurrency = 2

[[connection]]
id = "retail-prod"
base_url = "https://api.example.com/tenant/prod/company"

[[connection.entity]]
name = "items"
forward_to = "erp"
"#;

#[test]
fn a_target_parses_with_connection_defaults_and_a_default_forward_path() {
    let c = Config::parse(FORWARDING).unwrap();
    let t = c.target("erp").unwrap();
    assert_eq!((t.auth, t.max_concurrency, t.max_retries), (AuthKind::ApiKey, 2, 5));
    assert_eq!(t.api_key_header, "x-np-api-key");
    let e = &c.connections[0].entities[0];
    assert_eq!(e.forward_to.as_deref(), Some("erp"));
    assert_eq!(e.forward_path(), "/items");
    let conn = t.as_connection();
    assert_eq!((conn.id.as_str(), conn.timeout), ("erp", Duration::from_secs(30)));
    let custom = Config::parse(&format!("{FORWARDING}forward_path = \"/v2/products\"\n")).unwrap();
    assert_eq!(custom.connections[0].entities[0].forward_path(), "/v2/products");
}

#[test]
fn an_unknown_target_is_refused_with_its_line_and_the_known_targets() {
    let err = Config::parse(&FORWARDING.replace("forward_to = \"erp\"", "forward_to = \"crm\"")).unwrap_err().to_string();
    assert!(err.contains("line 14"), "{err}");
    assert!(err.contains("crm") && err.contains("the targets are: erp"), "{err}");
    let none = "[[connection]]\nid = \"a\"\nbase_url = \"http://x\"\n[[connection.entity]]\nname = \"items\"\nforward_to = \"erp\"\n";
    let err = Config::parse(none).unwrap_err().to_string();
    assert!(err.contains("line 6") && err.contains("no [[target]] section"), "{err}");
}

#[test]
fn bad_targets_are_refused_naming_the_target() {
    let dup = FORWARDING.replace("[[connection]]", "[[target]]\nid = \"erp\"\nbase_url = \"http://y\"\n\n[[connection]]");
    assert!(Config::parse(&dup).unwrap_err().to_string().contains("unique"));
    let clash = FORWARDING.replace("id = \"erp\"", "id = \"retail-prod\"").replace("forward_to = \"erp\"", "forward_to = \"retail-prod\"");
    // The connection's own id: the target is that connection's system (a two-way flow's side).
    assert!(Config::parse(&clash).is_ok(), "a target may be a connection's system");
    let err = Config::parse(
        &clash.replacen("id = \"retail-prod\"", "id = \"Retail-Prod\"", 1).replace("forward_to = \"retail-prod\"", "forward_to = \"Retail-Prod\""),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("line 3") && err.contains("keyring"), "a target id that differs only in case: {err}");
    let err = Config::parse(&FORWARDING.replace("https://erp.example.com/api", "ftp://erp")).unwrap_err().to_string();
    assert!(err.contains("target `erp`") && err.contains("https://"), "{err}");
    let err = Config::parse(&FORWARDING.replace("auth = \"api_key\"", "auth = \"oauth2\"")).unwrap_err().to_string();
    assert!(err.contains("token_url"), "{err}");
    let err = Config::parse(&FORWARDING.replace("max_concurrency = 2", "max_concurrency = 0")).unwrap_err().to_string();
    assert!(err.contains("max_concurrency"), "{err}");
    let err = Config::parse(&FORWARDING.replace("max_concurrency = 2", "max_concurency = 2")).unwrap_err().to_string();
    assert!(err.contains("line 6") && err.contains("max_concurency"), "a typo in a target names its line: {err}");
    let err = Config::parse(&format!("{FORWARDING}forward_path = \"products\"\n")).unwrap_err().to_string();
    assert!(err.contains("line 15") && err.contains("start with `/`"), "{err}");
    let err = Config::parse(&FORWARDING.replace("forward_to = \"erp\"", "forward_path = \"/x\"")).unwrap_err().to_string();
    assert!(err.contains("forward_path needs forward_to"), "{err}");
}

const TWO_ENTITIES: &str = r#"
[[connection]]
id = "src"
base_url = "https://api.example.com/tenant/prod/company"

[[connection.entity]]
name = "other"

[[connection.entity]]
name = "Items"

[[connection.entity]]
name = "more"

[[connection.entity]]
name = "items"
"#;

#[test]
fn names_that_differ_only_in_case_are_refused_naming_both_and_their_lines() {
    let err = Config::parse(TWO_ENTITIES).unwrap_err().to_string();
    assert!(err.contains("entity \"items\" (line 16) differs from \"Items\" (line 10) only in case"), "{err}");
    assert!(err.contains("rename one"), "{err}");
    let conns = "[[connection]]\nid = \"Shop\"\nbase_url = \"https://a.example\"\n\n[[connection]]\nid = \"shop\"\nbase_url = \"https://b.example\"\n";
    let err = Config::parse(conns).unwrap_err().to_string();
    assert!(err.contains("connection \"shop\" (line 6) differs from \"Shop\" (line 2) only in case"), "{err}");
}

#[test]
fn names_that_map_to_one_replica_table_are_refused() {
    let dash = TWO_ENTITIES.replace("\"Items\"", "\"a-b\"").replace("\"items\"", "\"a_b\"");
    let err = Config::parse(&dash).unwrap_err().to_string();
    assert!(err.contains("src/a_b (line 16) and src/a-b (line 10) would share the replica table `replica_src_a_b`"), "{err}");
    // connection `a_b` + entity `c` and connection `a` + entity `b_c` are both `replica_a_b_c`.
    let split = "[[connection]]\nid = \"a_b\"\nbase_url = \"https://a.example\"\n[[connection.entity]]\nname = \"c\"\n\
                 [[connection]]\nid = \"a\"\nbase_url = \"https://b.example\"\n[[connection.entity]]\nname = \"b_c\"\n";
    let err = Config::parse(split).unwrap_err().to_string();
    assert!(err.contains("a/b_c (line 10) and a_b/c (line 5) would share the replica table `replica_a_b_c`"), "{err}");
}

const URLS: &str = r#"
[[target]]
id = "erp"
base_url = "https://erp.example.com/api"

[[connection]]
id = "src"
base_url = "https://api.example.com/company"
auth = "oauth2"
token_url = "https://login.example.com/token"
client_id = "syncmon"

[[connection.entity]]
name = "items"
path = "/items"
forward_to = "erp"
"#;

#[test]
fn secrets_in_urls_are_refused_with_the_key_and_line_never_the_value() {
    Config::parse(URLS).unwrap();
    let cases = [
        (
            "https://api.example.com/company",
            "https://alice:s3cr3t-pw@api.example.com/company",
            "connections[0].base_url (line 8) contains a user name/password",
        ),
        ("https://api.example.com/company", "https://s3cr3t-user@api.example.com/company", "connections[0].base_url (line 8) contains a user name/password"),
        (
            "\"/items\"",
            "\"/items?sync=true&api_key=s3cr3t\"",
            "connections[0].entities[0].path (line 15) carries the credential-looking query parameter `api_key`",
        ),
        ("https://login.example.com/token", "https://login.example.com/token?client_secret=s3cr3t", "connections[0].token_url (line 10) carries"),
        (
            "https://erp.example.com/api",
            "https://erp.example.com/api?X-Api-Key=s3cr3t",
            "targets[0].base_url (line 4) carries the credential-looking query parameter `X-Api-Key`",
        ),
        ("forward_to = \"erp\"", "forward_to = \"erp\"\nforward_path = \"/in?auth=s3cr3t\"", "connections[0].entities[0].forward_path (line 17)"),
    ];
    for (from, to, expected) in cases {
        let text = URLS.replace(from, to);
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(err.contains(expected), "{to}: {err}");
        assert!(err.contains("syncmon creds set src") || err.contains("syncmon creds set erp"), "it says what to do: {err}");
        assert!(!err.contains("s3cr3t"), "the value must not be shown: {err}");
    }
    let cursor = "[[connection]]\nid = \"a\"\nbase_url = \"https://x.example\"\nprofile = \"cursor\"\n[connection.cursor]\n\
                  filter_param = \"since\"\nnext = \"link-header\"\nextra_query = \"order=seq&token=s3cr3t\"\n";
    let err = Config::parse(cursor).unwrap_err().to_string();
    assert!(err.contains("connections[0].cursor.extra_query (line 8)") && !err.contains("s3cr3t"), "{err}");
    let broken = URLS.replace("https://api.example.com/company", "https://alice:s3cr3t@api example.com");
    let err = Config::parse(&broken).unwrap_err().to_string();
    assert!(err.contains("not a URL") && !err.contains("s3cr3t"), "{err}");
    // Page keys and versions in a path are no secret.
    Config::parse(&URLS.replace("\"/items\"", "\"/items?pageKey=1&sync=true\"")).unwrap();
}

#[test]
fn a_rejected_value_is_never_echoed() {
    let conn = "[[connection]]\nid = \"a\"\nbase_url = \"https://x.example\"\n";
    let cases = [
        ("clientSecret = \"hunter2\"", "line 4: `clientSecret` would store a secret"),
        ("Client-Secret = \"hunter2\"", "line 4: `Client-Secret` would store a secret"),
        ("client_sercet = \"hunter2\"", "line 4: unknown field `client_sercet`"),
        ("max_retries = \"hunter2\"", "line 4: `max_retries`: wrong kind of value: expected u32"),
        ("auth = \"hunter2\"", "line 4: `auth`: unknown value: expected one of"),
        ("timeout = \"hunter2\"", "line 4: `timeout`: this is not a duration"),
        ("api_version = 'hunter2", "line 4"),
        ("secret_env = \"hunter2-pasted\"", "connections[0].secret_env (line 4) must be the NAME of an environment variable"),
        ("webhook_secret_env = \"hunter2 x\"", "connections[0].webhook_secret_env (line 4) must be the NAME"),
    ];
    for (line, expected) in cases {
        let err = Config::parse(&format!("{conn}{line}\n")).unwrap_err().to_string();
        assert!(err.contains(expected), "{line}: {err}");
        assert!(!err.contains("hunter2"), "{line}: the value must not be echoed: {err}");
    }
}

#[test]
fn values_that_cannot_work_are_refused_with_the_allowed_range() {
    let base = "[[connection]]\nid = \"a\"\nbase_url = \"https://x.example\"\n";
    let entity = "[[connection.entity]]\nname = \"items\"\n";
    let cases = [
        (format!("{base}timeout = \"0s\"\n"), "connections[0].timeout (line 4) must be between 100ms and 1h"),
        (format!("{base}requests_per_second = 1e-6\n"), "connections[0].requests_per_second (line 4) must be between 0.001"),
        (format!("{base}requests_per_second = 0\n"), "requests_per_second (line 4) must be between"),
        (format!("{base}requests_per_second = -2.0\n"), "requests_per_second (line 4) must be between"),
        (format!("{base}requests_per_second = nan\n"), "requests_per_second (line 4) must be between"),
        (format!("{base}max_concurrency = 0\n"), "connections[0].max_concurrency (line 4) must be between 1 and 256"),
        (format!("{base}breaker_threshold = 0\n"), "breaker_threshold (line 4) must be between 1 and"),
        (format!("{base}backoff_base = \"10s\"\nbackoff_max = \"1s\"\n"), "connections[0].backoff_max (line 5) must be between 10s and"),
        (format!("{base}lookback = \"-5m\"\n"), "line 4: `lookback`: this is not a duration"),
        (format!("{base}lookback = \"400days\"\n"), "connections[0].lookback (line 4) must be between 0s and 365d"),
        (format!("{base}{entity}page_size = 0\n"), "page_size must be between 1 and 100000 (line 6)"),
        (format!("{base}{entity}poll_every = \"0s\"\n"), "connections[0].entities[0].poll_every (line 6) must be between 1s and"),
        (format!("{base}{entity}full_resync_every = \"0s\"\n"), "connections[0].entities[0].full_resync_every (line 6) must be between 1s and"),
        (format!("[storage]\nrequest_log_retention = \"0s\"\n{base}"), "storage.request_log_retention (line 2) must be between 1s and"),
        (format!("[storage]\nruns_kept = 0\n{base}"), "storage.runs_kept (line 2) must be at least 1"),
        (format!("[[target]]\nid = \"t\"\nbase_url = \"https://t.example\"\ntimeout = \"0s\"\n{base}"), "targets[0].timeout (line 4) must be between"),
    ];
    for (text, expected) in &cases {
        let err = Config::parse(text).unwrap_err().to_string();
        assert!(err.contains(expected), "{text}\n→ {err}");
    }
    // The edges of the ranges are fine.
    Config::parse(&format!(
        "{base}timeout = \"100ms\"\nrequests_per_second = 0.001\nlookback = \"0s\"\n{entity}poll_every = \"1s\"\nfull_resync_every = \"1s\"\n"
    ))
    .unwrap();
}

#[test]
fn plain_http_to_another_machine_and_an_open_webhook_listener_are_warnings() {
    let text = r#"
[webhooks]
listen = "0.0.0.0:8385"

[[target]]
id = "erp"
base_url = "http://erp.internal:8080/api"

[[connection]]
id = "src"
base_url = "http://api.example.com/company"
auth = "oauth2"
token_url = "http://10.1.2.3/token"
client_id = "syncmon"

[[connection]]
id = "local"
base_url = "http://127.0.0.1:8080"
token_url = "http://localhost:9/token"

[[connection]]
id = "tls"
base_url = "https://api.example.com/company"
"#;
    let c = Config::parse(text).unwrap();
    let w = c.warnings();
    let keys: Vec<&str> = w.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(keys, ["connections[0].base_url", "connections[0].token_url", "targets[0].base_url", "webhooks.listen"], "{w:#?}");
    assert!(w[0].message.contains("plain http:// to api.example.com") && w[0].message.contains("use https://"), "{}", w[0].message);
    assert!(w[1].message.contains("10.1.2.3") && w[1].message.contains("client secret"), "{}", w[1].message);
    assert!(w[3].message.contains("0.0.0.0:8385") && w[3].message.contains("127.0.0.1"), "{}", w[3].message);
    let quiet = Config::parse(
        &text
            .replace("0.0.0.0", "127.0.0.1")
            .replace("http://erp.internal", "https://erp.internal")
            .replace("http://api.example.com", "https://api.example.com")
            .replace("http://10.1.2.3", "https://10.1.2.3"),
    )
    .unwrap();
    assert_eq!(quiet.warnings(), vec![]);
}

#[test]
fn a_warning_carries_the_line_of_its_key() {
    let text = "[[connection]]\nid = \"a\"\nbase_url = \"https://x.example\"\n\n[[target]]\nid = \"t\"\n# the ERP has no TLS yet\n\
                base_url = \"http://erp.example.com/api\"\n\n[webhooks]\nlisten = \"0.0.0.0:8385\"\n";
    let w = Config::parse(text).unwrap().warnings();
    let placed: Vec<(&str, Option<usize>)> = w.iter().map(|w| (w.key.as_str(), w.line)).collect();
    assert_eq!(placed, [("targets[0].base_url", Some(8)), ("webhooks.listen", Some(11))], "{w:#?}");
    assert!(w[0].to_string().ends_with("use https:// (line 8)"), "shown with its line: {}", w[0]);
}

#[test]
fn a_refusal_carries_the_dotted_key_and_its_line() {
    let base = "[[connection]]\nid = \"a\"\nbase_url = \"https://x.example\"\n";
    let entity = "[[connection.entity]]\nname = \"items\"\n";
    let cases = [
        // By position only (the parser, the secret scan): the key is found from the line.
        (format!("{base}max_retries = \"x\"\n"), "connections[0].max_retries", Some(4)),
        (format!("{base}client_sercet = \"x\"\n"), "connections[0].client_sercet", Some(4)),
        (format!("{base}{entity}client_secret = \"x\"\n"), "connections[0].entities[0].client_secret", Some(6)),
        // By the rule that refused it, including messages that name no key or another one.
        (format!("{base}{entity}deletion_guard = 2.0\n"), "connections[0].entities[0].deletion_guard", Some(6)),
        (format!("{base}{entity}{entity}"), "connections[0].entities[1].name", Some(7)),
        (format!("{base}auth = \"oauth2\"\ntoken_url = \"https://x.example/t\"\n"), "connections[0].client_id", None),
        (format!("{base}[[connection]]\nid = \"A\"\nbase_url = \"https://y.example\"\n"), "connections[1].id", Some(5)),
        (format!("[storage]\nruns_kept = 0\n{base}"), "storage.runs_kept", Some(2)),
        (format!("[webhooks]\nlisten = \"nowhere\"\n{base}"), "webhooks.listen", Some(2)),
        (format!("[[target]]\nid = \"t\"\nbase_url = \"ftp://t\"\n{base}"), "targets[0].base_url", Some(3)),
    ];
    for (text, key, line) in &cases {
        let p = Config::parse(text).unwrap_err();
        assert_eq!((p.key.as_deref(), p.line), (Some(*key), *line), "{text}\n→ {p}");
    }
}

#[test]
fn poll_every_never_is_push_only_and_the_ingest_limit_has_a_default_and_a_range() {
    let never = Config::parse(&MINIMAL.replace("poll_every = \"5m\"", "poll_every = \"never\"")).unwrap();
    assert_eq!(never.connections[0].entities[0].poll_every, None);
    assert_eq!(Config::parse(MINIMAL).unwrap().connections[0].entities[0].poll_every, Some(Duration::from_secs(300)));
    let err = Config::parse(&MINIMAL.replace("poll_every = \"5m\"", "poll_every = \"sometimes\"")).unwrap_err().to_string();
    assert!(err.contains("\"never\" for a push-only entity"), "{err}");
    let hooks = "[webhooks]\nlisten = \"127.0.0.1:8385\"\n";
    let c = Config::parse(&format!("{hooks}{MINIMAL}")).unwrap();
    assert_eq!(c.webhooks.unwrap().ingest_max_bytes, 10 * 1024 * 1024);
    let err = Config::parse(&format!("{hooks}ingest_max_bytes = 10\n{MINIMAL}")).unwrap_err();
    assert!(err.to_string().contains("ingest_max_bytes must be between 1024"), "{err}");
}

/// The issue's example of a timestamp feed.
const TIMESTAMP: &str = "[[connection]]\nid = \"a\"\nbase_url = \"http://127.0.0.1:1\"\nprofile = \"timestamp\"\n[connection.cursor]\n\
    id_field = \"id\"\nversion_field = \"lastModified\"\nrecords_pointer = \"/items\"\nfilter_param = \"modifiedSince\"\n\
    extra_query = \"orderBy=lastModified\"\npage_size_param = \"limit\"\nnext_url_pointer = \"/links/next\"\n";

#[test]
fn the_timestamp_profile_parses_with_its_defaults() {
    let c = Config::parse(TIMESTAMP).unwrap();
    let conn = &c.connections[0];
    assert_eq!((conn.profile, conn.overlap), (ProfileKind::Timestamp, Duration::ZERO));
    assert_eq!(conn.cursor.as_ref().unwrap().timestamp_format, None, "rfc3339 unless set");
    let c = Config::parse(&TIMESTAMP.replace("profile = \"timestamp\"\n", "profile = \"timestamp\"\noverlap = \"2s\"\n")).unwrap();
    assert_eq!(c.connections[0].overlap, Duration::from_secs(2));
}

#[test]
fn the_timestamp_profile_refuses_what_cannot_work_and_says_what_is_missing() {
    let refusal = |text: &str| Config::parse(text).unwrap_err().to_string();
    let no_cursor = "[[connection]]\nid = \"a\"\nbase_url = \"http://127.0.0.1:1\"\nprofile = \"timestamp\"\n";
    let err = refusal(no_cursor);
    assert!(err.contains("profile = \"timestamp\" needs a [connection.cursor] section with `version_field`") && err.contains("`filter_param`"), "{err}");
    let err = refusal(&TIMESTAMP.replace("version_field = \"lastModified\"\n", ""));
    assert!(err.contains("needs `version_field` in [connection.cursor]: the records' last-modified field"), "{err}");
    let err = refusal(&TIMESTAMP.replace("filter_param = \"modifiedSince\"\n", ""));
    assert!(err.contains("filter_param"), "{err}");
    let err = refusal(&TIMESTAMP.replace("next_url_pointer = \"/links/next\"", "next = \"short-page\""));
    assert!(err.contains("cannot page by `next = \"short-page\"`"), "{err}");
    let err = refusal(&TIMESTAMP.replace("next_url_pointer", "timestamp_format = \"epoch_minutes\"\nnext_url_pointer"));
    assert!(err.contains("timestamp_format"), "{err}");
    let cursor = TIMESTAMP.replace("\"timestamp\"", "\"cursor\"");
    let err = refusal(&cursor.replace("next_url_pointer", "timestamp_format = \"epoch_millis\"\nnext_url_pointer"));
    assert!(err.contains("`timestamp_format` applies only to profile = \"timestamp\""), "{err}");
    let err = refusal(&cursor.replace("profile = \"cursor\"\n", "profile = \"cursor\"\noverlap = \"2s\"\n"));
    assert!(err.contains("`overlap` applies only to profile = \"timestamp\""), "{err}");
}

#[test]
fn a_target_has_a_default_idempotency_header_and_an_entity_no_field_mapping() {
    let c = Config::parse(FORWARDING).unwrap();
    assert_eq!(c.target("erp").unwrap().idempotency_header, "Idempotency-Key");
    let e = &c.connections[0].entities[0];
    assert!(e.forward_rename.is_empty() && e.forward_drop.is_empty());
    let text = FORWARDING.replace("max_concurrency = 2", "max_concurrency = 2\nidempotency_header = \"X-Key\"");
    assert_eq!(Config::parse(&text).unwrap().target("erp").unwrap().idempotency_header, "X-Key");
    let text = FORWARDING.replace("forward_to = \"erp\"", "forward_to = \"erp\"\nforward_rename = { sku = \"code\" }\nforward_drop = [\"note\"]");
    let c = Config::parse(&text).unwrap();
    let e = &c.connections[0].entities[0];
    assert_eq!((e.forward_rename.get("sku").map(String::as_str), e.forward_drop.as_slice()), (Some("code"), &["note".to_string()][..]));
}

#[test]
fn a_metrics_address_is_parsed_and_a_bad_one_refused_with_its_key_and_line() {
    let c = Config::parse(&format!("[metrics]\nlisten = \"127.0.0.1:9464\"\n{MINIMAL}")).unwrap();
    assert_eq!(c.metrics.unwrap().listen, "127.0.0.1:9464");
    assert!(Config::parse(MINIMAL).unwrap().metrics.is_none(), "off unless configured");
    let err = Config::parse(&format!("{MINIMAL}\n[metrics]\nlisten = \"localhost\"\n")).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("metrics.listen"));
    assert_eq!(err.line, Some(15));
    assert!(err.message.contains("[metrics] listen = \"localhost\" is not an address") && err.message.contains("(line 15)"), "{}", err.message);
}

#[test]
fn a_postgresql_replica_parses_with_a_30_second_lease_and_tls_to_another_host_and_refuses_a_password_or_plain_text_beyond_loopback() {
    let c = Config::parse(&format!("[replica]\nurl = \"postgresql://syncmon@127.0.0.1:5432/syncmon\"\npassword_env = \"PGPASS_SYNCMON\"\n{MINIMAL}")).unwrap();
    let r = c.replica.unwrap();
    assert_eq!(
        (r.url.as_str(), r.password_env.as_deref(), r.lease, r.agent),
        ("postgresql://syncmon@127.0.0.1:5432/syncmon", Some("PGPASS_SYNCMON"), Duration::from_secs(30), None)
    );
    assert!(Config::parse(MINIMAL).unwrap().replica.is_none(), "SQLite unless configured");
    let refused = |body: &str| Config::parse(&format!("{MINIMAL}\n[replica]\n{body}\n")).unwrap_err();
    let err = refused("url = \"postgresql://syncmon:hunter2@127.0.0.1/syncmon\"");
    assert_eq!(err.key.as_deref(), Some("replica.url"));
    assert!(err.message.contains("holds a password") && err.message.contains("syncmon creds replica") && !err.message.contains("hunter2"), "{}", err.message);
    assert!(refused("url = \"mysql://u@127.0.0.1/db\"").message.contains("must start with postgresql://"));
    // Another host: verified TLS (no sslmode, or any TLS mode), never plain.
    for url in ["postgresql://u@db.example.com/db", "postgresql://u@db.example.com/db?sslmode=verify-full", "postgresql://u@10.0.0.5/db?sslmode=require"] {
        let c = Config::parse(&format!("{MINIMAL}\n[replica]\nurl = \"{url}\"\n")).unwrap_or_else(|e| panic!("{url}: {}", e.message));
        assert_eq!(c.replica.unwrap().url, url);
    }
    let err = refused("url = \"postgresql://u@db.example.com/db?sslmode=disable\"");
    assert_eq!((err.key.as_deref(), err.line), (Some("replica.url"), Some(15)), "{}", err.message);
    assert!(err.message.contains("sslmode=disable") && err.message.contains("unencrypted") && err.message.contains("SSH tunnel"), "{}", err.message);
    // The address connected to decides, also when the query adds one.
    assert!(refused("url = \"postgresql://u@127.0.0.1/db?hostaddr=10.0.0.5&sslmode=disable\"").message.contains("another host"));
    assert!(refused("url = \"postgresql://u@127.0.0.1/db?sslmode=allow\"").message.contains("write verify-full"));
    assert!(refused("url = \"postgresql://u@db.example.com/db?sslrootcert=ca.pem\"").message.contains("[replica] ca_file"));
    assert!(refused("url = \"postgresql://u@127.0.0.1:5432\"").message.contains("names no database"));
    assert!(refused("url = \"postgresql://u@127.0.0.1/db\"\npassword_env = \"not a name\"").message.contains("must name an environment variable"));
    let err = refused("url = \"postgresql://u@[::1]/db\"\nlease = \"0s\"");
    assert_eq!(err.key.as_deref(), Some("replica.lease"));
    assert!(err.message.contains("between 1s and 1h"), "{}", err.message);
}

#[test]
fn a_replica_ca_file_is_read_from_the_config_directory_and_refused_when_missing_or_not_pem() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(dir.path().join("db-ca.pem"), params.self_signed(&ca_key).unwrap().pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), ca_key.serialize_pem()).unwrap();
    let text = |file: &str, url: &str| format!("{MINIMAL}\n[replica]\nurl = \"{url}\"\nca_file = \"{file}\"\n");
    let c = Config::parse_in(&text("db-ca.pem", "postgresql://u@db.example.com/db"), dir.path()).unwrap();
    assert_eq!(c.replica.unwrap().ca.len(), 1, "the CA certificate is loaded");
    for (file, why) in [("missing.pem", "cannot read"), ("key.pem", "holds no PEM certificate"), (" ", "is empty")] {
        let err = Config::parse_in(&text(file, "postgresql://u@db.example.com/db"), dir.path()).unwrap_err();
        assert_eq!((err.key.as_deref(), err.line), (Some("replica.ca_file"), Some(16)), "{file}: {}", err.message);
        assert!(err.message.contains(why) && err.message.contains("replica.ca_file (line 16)"), "{file}: {}", err.message);
    }
    let err = Config::parse_in(&text("db-ca.pem", "postgresql://u@127.0.0.1/db?sslmode=disable"), dir.path()).unwrap_err();
    assert!(err.message.contains("ca_file is only for TLS"), "{}", err.message);
}
