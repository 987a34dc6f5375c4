use axum::http::{HeaderMap, HeaderValue, Uri};

use super::*;

fn guard(listen: &str, origins: Option<&[&str]>, hosts: Option<&[&str]>) -> RequestGuard {
    let list = |entries: &[&str]| entries.iter().map(|e| e.to_string()).collect();
    RequestGuard::new(&GuardConfig {
        listen: Some(listen.parse().unwrap()),
        public_url: Some("https://agents.example.com/base".into()),
        allowed_origins: origins.map(list),
        allowed_hosts: hosts.map(list),
    })
    .unwrap()
}

fn origin_ok(guard: &RequestGuard, origin: &str) -> bool {
    guard.origin_allowed(&HeaderValue::from_str(origin).unwrap())
}

#[test]
fn default_origins_on_a_loopback_bind() {
    let guard = guard("127.0.0.1:4000", None, None);
    let table = [
        ("http://127.0.0.1:4000", true),
        ("http://localhost:3000", true),
        ("http://LOCALHOST:5173", true),
        ("http://[::1]:8080", true),
        ("http://127.0.0.1", true),
        ("https://agents.example.com", true),
        ("https://agents.example.com:443", true),
        ("https://agents.example.com:8443", false),
        ("http://agents.example.com", false),
        ("https://localhost:3000", false),
        ("https://evil.example", false),
        ("http://localhost.evil.example:3000", false),
        ("http://user@localhost:3000", false),
        ("null", false),
        ("", false),
        ("file://", false),
    ];
    for (origin, allowed) in table {
        assert_eq!(origin_ok(&guard, origin), allowed, "{origin}");
    }
}

#[test]
fn loopback_pages_are_not_default_on_a_remote_bind() {
    let guard = guard("0.0.0.0:4000", None, None);
    assert!(!origin_ok(&guard, "http://localhost:3000"));
    assert!(!origin_ok(&guard, "http://0.0.0.0:4000"));
    assert!(origin_ok(&guard, "https://agents.example.com"));
    let own = self::guard("10.0.0.5:4000", None, None);
    assert!(own.origin_allowed(&HeaderValue::from_static("http://10.0.0.5:4000")));
}

#[test]
fn configured_origins_replace_the_loopback_default() {
    let guard = guard(
        "127.0.0.1:4000",
        Some(&["https://app.example.com", "http://dev.example.com:*"]),
        None,
    );
    assert!(origin_ok(&guard, "https://app.example.com"));
    assert!(origin_ok(&guard, "http://dev.example.com:1234"));
    assert!(origin_ok(&guard, "http://127.0.0.1:4000"), "its own origin");
    assert!(!origin_ok(&guard, "http://localhost:3000"));
    assert!(!origin_ok(&guard, "https://app.example.com:8443"));
    let any = self::guard("127.0.0.1:4000", Some(&["*"]), None);
    assert!(any.allows_any_origin());
    assert!(origin_ok(&any, "https://evil.example"));
}

#[test]
fn hosts_are_checked_on_a_loopback_bind() {
    let guard = guard("127.0.0.1:4000", None, None);
    let table = [
        ("127.0.0.1:4000", true),
        ("localhost:4000", true),
        ("localhost", true),
        ("[::1]:4000", true),
        ("127.0.0.2", true),
        ("agents.example.com", true),
        ("AGENTS.example.com:8443", true),
        ("rebind.evil.example:4000", false),
        ("localhost.evil.example", false),
        ("user@localhost:4000", false),
        ("localhost:99999", false),
        ("localhost:", false),
        ("", false),
        (":4000", false),
    ];
    for (host, allowed) in table {
        assert_eq!(guard.host_allowed(host), allowed, "{host}");
    }
}

#[test]
fn hosts_on_a_remote_bind_are_checked_only_when_listed() {
    let open = guard("0.0.0.0:4000", None, None);
    assert!(open.host_allowed("anything.example"));
    let listed = guard(
        "0.0.0.0:4000",
        None,
        Some(&["runtime.internal:4000", "::1"]),
    );
    assert!(listed.host_allowed("runtime.internal:4000"));
    assert!(!listed.host_allowed("runtime.internal:4001"));
    assert!(listed.host_allowed("localhost:4000"));
    assert!(!listed.host_allowed("other.example"));
    let any = guard("127.0.0.1:4000", None, Some(&["*"]));
    assert!(any.host_allowed("rebind.evil.example"));
}

#[test]
fn check_gives_a_code_per_refusal() {
    let guard = guard("127.0.0.1:4000", None, None);
    let uri = Uri::from_static("/v1/sessions");
    let headers = |pairs: &[(&'static str, &'static str)]| {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    };
    assert_eq!(guard.check(&HeaderMap::new(), &uri), Ok(()));
    let code = |pairs| guard.check(&headers(pairs), &uri).map_err(|e| e.code);
    assert_eq!(code(&[("host", "127.0.0.1:4000")]), Ok(()));
    assert_eq!(
        code(&[("host", "evil.example:4000")]),
        Err(ErrorCode::HostForbidden)
    );
    assert_eq!(
        code(&[
            ("host", "localhost:4000"),
            ("origin", "https://evil.example")
        ]),
        Err(ErrorCode::OriginForbidden)
    );
    assert_eq!(
        code(&[
            ("host", "localhost:4000"),
            ("origin", "http://localhost:3000")
        ]),
        Ok(())
    );
    let http2 = Uri::from_static("http://evil.example:4000/v1/sessions");
    assert_eq!(
        guard.check(&HeaderMap::new(), &http2).map_err(|e| e.code),
        Err(ErrorCode::HostForbidden)
    );
}

#[test]
fn config_entries_are_validated() {
    for good in [
        "*",
        "https://app.example.com",
        "http://localhost:*",
        "http://[::1]:3000",
        "https://app.example.com/",
    ] {
        assert_eq!(validate_origin_entry(good), Ok(()), "{good}");
    }
    for bad in [
        "app.example.com",
        "ftp://app.example.com",
        "https://app.example.com/path",
        "https://user@app.example.com",
        "https://",
        "https://app.example.com:99999",
        "https://app.example.com:80:*",
    ] {
        let message = validate_origin_entry(bad).unwrap_err();
        assert!(message.contains("is not an origin"), "{bad}: {message}");
    }
    for good in [
        "*",
        "runtime.internal",
        "runtime.internal:4000",
        "::1",
        "[::1]:4000",
    ] {
        assert_eq!(validate_host_entry(good), Ok(()), "{good}");
    }
    for bad in ["", "http://runtime.internal", "a b", "host:port"] {
        assert!(validate_host_entry(bad).is_err(), "{bad}");
    }
}
