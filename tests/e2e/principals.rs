//! `auth.mode = "principals"` end to end: API keys made with `agent-runtime keys`, JWTs
//! signed with a shared secret or with keys from a JWKS URL (rotated), two principals
//! trying each other's sessions over REST and Socket.IO, an admin, and quotas.

use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::support::{Http, Runtime, Setup, node};

/// Runs `agent-runtime keys --config <setup's config> ARGS`.
fn keys(setup: &Setup, args: &[&str]) -> Output {
    setup.write_config();
    std::process::Command::new(env!("CARGO_BIN_EXE_agent-runtime"))
        .arg("keys")
        .arg("--config")
        .arg(setup.config_path())
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

/// `keys create ARGS`; returns the printed key.
fn create_key(setup: &Setup, args: &[&str]) -> String {
    let mut all = vec!["create"];
    all.extend_from_slice(args);
    let output = keys(setup, &all);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = stdout.trim().to_owned();
    assert!(key.starts_with("ark_") && key.len() == 68, "{key}");
    key
}

/// Every REST request about session `id`, each expected to be 404 `not_found` for a
/// principal that does not own it.
async fn rest_attempts(http: &Http, id: &str) -> Vec<(String, u16, Value)> {
    use reqwest::Method;
    let mut answers = Vec::new();
    let requests = [
        (Method::GET, format!("/v1/sessions/{id}"), None),
        (Method::GET, format!("/v1/sessions/{id}/events"), None),
        (Method::GET, format!("/v1/sessions/{id}/files"), None),
        (
            Method::GET,
            format!("/v1/sessions/{id}/files/CLAUDE.md"),
            None,
        ),
        (Method::GET, format!("/v1/sessions/{id}/transcript"), None),
        (
            Method::POST,
            format!("/v1/sessions/{id}/messages"),
            Some(json!({ "content": "hi" })),
        ),
        (Method::POST, format!("/v1/sessions/{id}/interrupt"), None),
        (Method::POST, format!("/v1/sessions/{id}/stop"), None),
        (Method::POST, format!("/v1/sessions/{id}/resume"), None),
        (Method::DELETE, format!("/v1/sessions/{id}"), None),
    ];
    for (method, path, body) in requests {
        let (status, answer) = http.send(method.clone(), &path, body).await;
        answers.push((format!("{method} {path}"), status, answer));
    }
    answers
}

async fn assert_not_found_everywhere(http: &Http, runtime: &Runtime, token: &str, id: &str) {
    for (request, status, answer) in rest_attempts(http, id).await {
        assert_eq!(status, 404, "{request}: {answer}");
        assert_eq!(answer["error"]["code"], "not_found", "{request}");
    }
    // The SSE stream too.
    let response = reqwest::Client::new()
        .get(format!("{}/v1/sessions/{id}/events", runtime.url))
        .header("accept", "text/event-stream")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "SSE of another's session");
    let (status, listed) = http.get("/v1/sessions").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert!(!ids.contains(&id), "another's session is not listed");
}

/// Two principals try each other's sessions over REST; both are still there afterwards.
async fn cross_principal_over_rest(runtime: &Runtime, a: &str, b: &str) {
    let (http_a, http_b) = (
        Http::new(runtime).with_token(a),
        Http::new(runtime).with_token(b),
    );
    let id_a = http_a.create_session("tester").await;
    let id_b = http_b.create_session("tester").await;
    assert_not_found_everywhere(&http_a, runtime, a, &id_b).await;
    assert_not_found_everywhere(&http_b, runtime, b, &id_a).await;
    assert_eq!(http_a.get(&format!("/v1/sessions/{id_a}")).await.0, 200);
    assert_eq!(http_b.get(&format!("/v1/sessions/{id_b}")).await.0, 200);
    let (status, body) = http_a
        .post(
            "/v1/sessions",
            json!({ "agentType": "tester", "owner": "someone-else" }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");
}

fn assert_socket_summary(summary: &Value) {
    for (name, outcome) in summary["refusals"].as_object().unwrap() {
        assert_eq!(outcome, "unauthorized", "{name}");
    }
    for side in ["aOnB", "bOnA"] {
        let codes = summary[side].as_object().unwrap();
        assert_eq!(codes.len(), 8, "{summary}");
        assert!(codes.values().all(|c| c == "not_found"), "{summary}");
    }
    assert_eq!(summary["stopped"], "stopped");
}

#[tokio::test]
async fn api_keys_are_principals_made_listed_and_revoked_by_the_cli() {
    let mut setup = Setup::scripted();
    setup.extra_toml = "[auth]\nmode = \"principals\"\nkey_cache = \"1s\"\n".into();
    let alice = create_key(&setup, &["alice"]);
    let bob = create_key(&setup, &["bob"]);
    let ops = create_key(&setup, &["ops", "--admin"]);
    let carol = create_key(&setup, &["carol", "--max-live", "1"]);
    let dave = create_key(&setup, &["dave", "--creates-per-minute", "1"]);
    let erin = create_key(&setup, &["erin", "--creates-per-minute", "1"]);

    let mut in_memory = Setup::scripted();
    in_memory.store_toml = "kind = \"memory\"".into();
    let refused = keys(&in_memory, &["create", "alice"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("memory"));
    assert!(refused.stdout.is_empty(), "no key is printed");

    let again = keys(&setup, &["create", "alice"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    let bad = keys(&setup, &["create", "no spaces"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("key name"));
    let listed = keys(&setup, &["list"]);
    assert!(listed.status.success());
    let table = String::from_utf8(listed.stdout).unwrap();
    for name in ["alice", "bob", "ops", "carol", "dave", "erin"] {
        assert!(table.contains(&format!("\n{name}\t")), "{table}");
    }
    assert!(table.contains("ops\tyes\t"), "{table}");
    assert!(table.contains("carol\tno\t1\t-\t-\t-\t"), "{table}");
    assert!(
        !table.contains("ark_"),
        "a listing never shows a key:\n{table}"
    );

    let runtime = Runtime::start(&setup);
    let summary = node(
        "principals.mjs",
        &runtime,
        &json!({
            "a": alice, "b": bob, "admin": ops, "bOwner": "bob",
            "refused": {
                "unknownKey": format!("ark_{}", "0".repeat(64)),
                "garbage": "nope",
                "empty": "",
                "aJwtWithoutJwtConfig": "eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
            },
            "limited": erin,
        }),
    );
    assert_socket_summary(&summary);
    assert_eq!(summary["rateLimited"]["code"], "rate_limited", "{summary}");
    let wait = summary["rateLimited"]["retryAfter"].as_u64().unwrap();
    assert!((1..=60).contains(&wait), "{summary}");
    cross_principal_over_rest(&runtime, &alice, &bob).await;

    // The admin sees every session over REST too.
    let (status, all) = Http::new(&runtime)
        .with_token(&ops)
        .get("/v1/sessions")
        .await;
    assert_eq!(status, 200);
    assert!(all["sessions"].as_array().unwrap().len() >= 4, "{all}");

    // Limits set on the key.
    let carol_http = Http::new(&runtime).with_token(&carol);
    carol_http.create_session("tester").await;
    let (status, body) = carol_http
        .post("/v1/sessions", json!({ "agentType": "tester" }))
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    let dave_http = Http::new(&runtime).with_token(&dave);
    dave_http.create_session("tester").await;
    let (status, body) = dave_http
        .post("/v1/sessions", json!({ "agentType": "tester" }))
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    let wait = body["error"]["retryAfter"].as_u64().expect("retryAfter");
    assert!((1..=60).contains(&wait), "{body}");

    // Revoked from another process: refused within key_cache (1 s here).
    let alice_http = Http::new(&runtime).with_token(&alice);
    assert_eq!(alice_http.get("/v1/sessions").await.0, 200);
    assert!(keys(&setup, &["revoke", "alice"]).status.success());
    let revoked_at = Instant::now();
    loop {
        let (status, body) = alice_http.get("/v1/sessions").await;
        if status == 401 {
            assert_eq!(body["error"]["code"], "unauthorized");
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(3),
            "a revoked key still works after {:?}",
            revoked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!keys(&setup, &["revoke", "alice"]).status.success());
    assert_eq!(
        Http::new(&runtime)
            .with_token(&bob)
            .get("/v1/sessions")
            .await
            .0,
        200
    );

    let log = runtime.log();
    for key in [&alice, &bob, &ops, &carol, &dave, &erin] {
        assert!(!log.contains(key.as_str()), "a key reached the log");
    }
    assert_eq!(runtime.terminate(), Some(0));
}

const ISSUER: &str = "https://app.test";
const AUDIENCE: &str = "agent-runtime";
const JWT_SECRET: &str = "an hs256 secret for the e2e tests, long enough";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(sub: &str) -> Value {
    json!({ "sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600, "nbf": now() - 5 })
}

fn hs256(claims: &Value, secret: &str) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes()).unwrap();
    encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
}

#[tokio::test]
async fn jwts_are_principals_and_bad_ones_are_unauthorized() {
    let mut setup = Setup::scripted();
    setup.extra_toml = format!(
        "[auth]\nmode = \"principals\"\napi_keys = false\n[auth.jwt]\nissuer = \"{ISSUER}\"\n\
         audience = \"{AUDIENCE}\"\nsecret = \"{JWT_SECRET}\"\nadmin_claim = \"agentAdmin\"\n\
         leeway = \"1s\"\n"
    );
    let runtime = Runtime::start(&setup);
    let user_a = hs256(&claims("user-a"), JWT_SECRET);
    let user_b = hs256(&claims("user-b"), JWT_SECRET);
    let mut admin = claims("ops");
    admin["agentAdmin"] = json!(true);
    let admin = hs256(&admin, JWT_SECRET);

    let with = |field: &str, value: Value| {
        let mut c = claims("user-a");
        c[field] = value;
        hs256(&c, JWT_SECRET)
    };
    let refused = json!({
        "expired": with("exp", json!(now() - 120)),
        "notYetValid": with("nbf", json!(now() + 600)),
        "wrongAudience": with("aud", json!("another-service")),
        "wrongIssuer": with("iss", json!("https://evil.test")),
        "wrongKey": hs256(&claims("user-a"), "another secret that is long enough too"),
        "anApiKeyWithKeysOff": format!("ark_{}", "1".repeat(64)),
    });
    for (name, token) in refused.as_object().unwrap() {
        let (status, body) = Http::new(&runtime)
            .with_token(token.as_str().unwrap())
            .get("/v1/sessions")
            .await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{name}");
    }
    let summary = node(
        "principals.mjs",
        &runtime,
        &json!({ "a": user_a, "b": user_b, "admin": admin, "bOwner": "user-b", "refused": refused }),
    );
    assert_socket_summary(&summary);
    cross_principal_over_rest(&runtime, &user_a, &user_b).await;
    assert!(!runtime.log().contains(&user_a), "a token reached the log");
    assert_eq!(runtime.terminate(), Some(0));
}

/// Two Ed25519 key pairs: PKCS#8 private keys (hex) and their public `x` (base64url).
const KEY_1: (&str, &str) = (
    "302e020100300506032b6570042204207346d034e78e2c46a03a75d60f909c7f2a3d144a518a4f79e376e9b0f2c47e50",
    "Z3tGLzlW4IzN2rxbJ2YhB_JWVHMiMJgmtVzYXuZw9SI",
);
const KEY_2: (&str, &str) = (
    "302e020100300506032b657004220420a8bebd94063a64b8e08a16966530aee23b8bcaca10e61b109ab5739d07044dd8",
    "-J5SB50wD_k_r1jfTj-IlcESxkz_NMJ1LlndqvhU3RA",
);

fn jwk(kid: &str, key: (&str, &str)) -> Value {
    json!({ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": key.1 })
}

fn eddsa(sub: &str, kid: &str, key: (&str, &str)) -> String {
    let der: Vec<u8> = (0..key.0.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&key.0[i..i + 2], 16).unwrap())
        .collect();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    encode(&header, &claims(sub), &EncodingKey::from_ed_der(&der)).unwrap()
}

/// Serves the JWKS in `keys` at `/jwks.json`; returns its URL.
async fn serve_jwks(keys: Arc<Mutex<Value>>) -> String {
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let keys = keys.clone();
            async move { axum::Json(keys.lock().unwrap().clone()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/jwks.json")
}

#[tokio::test]
async fn keys_from_a_jwks_url_are_used_and_rotated() {
    let jwks = Arc::new(Mutex::new(json!({ "keys": [jwk("k1", KEY_1)] })));
    let url = serve_jwks(jwks.clone()).await;
    let mut setup = Setup::scripted();
    setup.extra_toml = format!(
        "[auth]\nmode = \"principals\"\napi_keys = false\n[auth.jwt]\nissuer = \"{ISSUER}\"\n\
         audience = \"{AUDIENCE}\"\njwks_url = \"{url}\"\n"
    );
    setup.write_config();
    // Not a blocking call: the JWKS server runs on this test's runtime.
    let check = tokio::process::Command::new(env!("CARGO_BIN_EXE_agent-runtime"))
        .args(["check", "--config"])
        .arg(setup.config_path())
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        report.contains("auth: JWKS reachable, 1 usable key(s)"),
        "{report}"
    );
    let runtime = Runtime::start(&setup);
    let status = |token: String| {
        let runtime = &runtime;
        async move {
            Http::new(runtime)
                .with_token(&token)
                .get("/v1/sessions")
                .await
                .0
        }
    };
    assert_eq!(status(eddsa("user-a", "k1", KEY_1)).await, 200);
    // Signed with another key under a known kid, or an HS256 token: refused.
    assert_eq!(status(eddsa("user-a", "k1", KEY_2)).await, 401);
    assert_eq!(status(hs256(&claims("user-a"), JWT_SECRET)).await, 401);
    // A kid the set does not have yet: refused (after one fetch that finds nothing).
    assert_eq!(status(eddsa("user-a", "k2", KEY_2)).await, 401);

    // The issuer rotates: k2 replaces k1. The next token with k2 makes the runtime fetch
    // again (at most once a second), and from then on k1 is gone.
    *jwks.lock().unwrap() = json!({ "keys": [jwk("k2", KEY_2)] });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(status(eddsa("user-a", "k2", KEY_2)).await, 200);
    assert_eq!(status(eddsa("user-a", "k1", KEY_1)).await, 401);
    assert_eq!(runtime.terminate(), Some(0));
}
