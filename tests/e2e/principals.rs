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
pub(crate) fn keys(setup: &Setup, args: &[&str]) -> Output {
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
pub(crate) fn create_key(setup: &Setup, args: &[&str]) -> String {
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
        (
            Method::POST,
            format!("/v1/sessions/{id}/answers"),
            Some(json!({ "requestId": "r-1", "behavior": "allow" })),
        ),
        (
            Method::PUT,
            format!("/v1/sessions/{id}/budget"),
            Some(json!({ "maxTurns": 1 })),
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
        assert_eq!(codes.len(), 11, "{summary}");
        assert!(codes.values().all(|c| c == "not_found"), "{summary}");
    }
    assert_eq!(summary["stopped"], "stopped");
    assert_eq!(summary["ownBudget"], "forbidden", "{summary}");
    assert_eq!(summary["raisedBudget"], 3, "{summary}");
    assert_eq!(summary["forkOfA"], summary["idA"], "{summary}");
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

    // Revoked from another process while a socket is open: its next requests are
    // refused within key_cache (1 s here), and it is disconnected.
    let frank = create_key(&setup, &["frank"]);
    let summary = node(
        "revoked.mjs",
        &runtime,
        &json!({
            "token": frank,
            "command": [
                env!("CARGO_BIN_EXE_agent-runtime"), "keys", "--config",
                setup.config_path(), "revoke", "frank",
            ],
        }),
    );
    assert_eq!(summary["refused"], "unauthorized", "{summary}");
    assert_eq!(summary["closed"], true, "{summary}");

    // An open SSE stream ends at its next check (every 10 s) once its key is revoked.
    let gina = create_key(&setup, &["gina"]);
    let gina_session = Http::new(&runtime)
        .with_token(&gina)
        .create_session("tester")
        .await;
    let mut stream = reqwest::Client::new()
        .get(format!("{}/v1/sessions/{gina_session}/events", runtime.url))
        .header("accept", "text/event-stream")
        .bearer_auth(&gina)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(keys(&setup, &["revoke", "gina"]).status.success());
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        while stream.chunk().await.ok().flatten().is_some() {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the SSE stream of a revoked key is still open"
    );

    // ...and over REST.
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
    for key in [&alice, &bob, &ops, &carol, &dave, &erin, &frank, &gina] {
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

/// A P-256 key (PKCS#8, hex) and its public coordinates, for ES256.
const EC_KEY: &[&str] = &[
    "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b020101042020c10d52f1ba8215",
    "b3f5198c7904d7650f49171ef2f04e2864337be35eb074f5a144034200043a988edef08ea648454c6b44118f",
    "f8740fbace61f13e85894e88dd447e82e9d2309b42b1e0865c5986ba48c385f8ea1e9614244dbdf4659ea66b",
    "10a6541227eb",
];
const EC_X: &str = "OpiO3vCOpkhFTGtEEY_4dA-6zmHxPoWJTojdRH6C6dI";
const EC_Y: &str = "MJtCseCGXFmGukjDhfjqHpYUJE299GWepmsQplQSJ-s";

/// A 2048-bit RSA key (PKCS#1, hex) and its public modulus, for RS256.
const RSA_KEY: &[&str] = &[
    "308204a302010002820101009d2173dc029520f0a7fb3af766a9c47dd8e896e12613d741004af586da9c532f",
    "891065ed29dd79d559c32a1aace1ffdb70202c83b11cc58736932fa611353161b911e3f21e508b0d4d2c5ce4",
    "623e2a326fc186fc1f10e0f888239b00854023b6d3110d7cf8d1570595214ce8c5a9be37f575acb7ff1424cf",
    "99ba2a194ba76eeecfb8970da30a66ec49b060297c9bcb92a9d7ed275a2f8698636f9ccbd32ce68c093a6ab5",
    "4e485afb8143f98c42e97a386f4f4d7487eb07902f089c88b4e27e00be5a0acfa4a4d34d85953d65ce0bbd8d",
    "5b95da7453299448aa3ff9f2d3a7324aa2aca6ef6d8fdf275e31704ecfcbf395bc2d5d2acb12d193f30b730e",
    "bb21ce870203010001028201000a7ad7b25dcdba73b29073ff5a2e8a7766472501013c2388274fd88e54f846",
    "280e7934831bdeb4a881231e24c7510f728048f50f1779f6c6ace226346a4364f6c29429e2d518c41d6fff3c",
    "76d3029867e2c242918034ecfc4680316f5873cdadfce7cf417d8ae0c5f38b5408d65e1adcba974d9cbbfb88",
    "f4fba8c9f403f2b7d844d570d783571f31f3240bc6aca39007ff9a6d0724e72a57799957900817240621d748",
    "800f65d71c07fad1151e41974271e7adf2dcf2fc25c88e3bc56307fe162e2f17fa64f30d4890edca23f5bbcb",
    "5d6f1e6eb87e06ac14d0df178341503aa45b8e678c9f4bc4f7bd2a70ddb801526876eb5c671f910421f40b18",
    "ecf826b23102818100d9517a106b7d266c788e759fc9c5d94e7cde273b8decee72a813386d0931e1a513524f",
    "b8cd074c48be9267ee2c77ec19e35e5c53ff3aa676a4ebb42980ab703c9e92b128150d20f9e036e5c908ce1e",
    "0f239e5f66fdcd9cdfce12edfb888c5e1099ac0578b05cddc58631fb92af4e18e6aad64b31ed2d24d7edf2a0",
    "c00df9ae7902818100b91969a83972837f272b3bbab20f7ab24dfbab3d45114410a6a37be485093e9355680e",
    "5fc88979e28bf10d7e07fe8e68fa0a9a6a37dfd0466b7b1fcc9ec94a6ea866c32a49dee6c46f681e7700689b",
    "2548c893c5a946fe2cc5b0fa42183d53fcc2f821d7cb8681f7a7064e7b10cb05be64b13eec82c1e84cbb1072",
    "b8810424ff028180723b4acf70c0f33e974c42f60028d8a6522ab032b4d2b3305fbae2b125e12b7c0b20fc38",
    "e6c50c4b3ca956aa3283c2fe84aea8179b14a845bb410e8db64de78c65ca34071eb1ad00cbe3ef7b71fe6e7c",
    "84bb8de86446fd4c03559df4d6fcf9c0fe1617362e765238aee67d17c8c06384748e7a2e3f3eb89c2c3e9a52",
    "f9c5a1f9028181008c97dbe416367fe0edec6dc2e20ad5e4674d5885025819fe17c4a78f2ce997a92b3f0d63",
    "fd9b4684284d613530774ece37d623f1b81cfd42efd2a695b2aa2c2a1f2966e65113c8eebdbc351fa8a4cbeb",
    "26fc8b19a0f93688e56406c27b4ce1e564663ab68175da74345e9aefe9127c7b605a2cf452615cc423765bdc",
    "feca1a1b028180030f6b28067aae8a5a0309106959caba566820f3691d827bc1f9b1eda320545d409e780ce7",
    "f395cbaf7bf171238d9d68aa137ef18867da9431fe4c6a053f8500bebef4952f2a061e9ac6d160df1ac83d3e",
    "82ac2acdaf0403c5e3673df218503e0274e425687ef048a91098774fa94a0c948e5ebea812fb3ffd201fd773",
    "3c27a5",
];
const RSA_N: &str = "nSFz3AKVIPCn-zr3ZqnEfdjoluEmE9dBAEr1htqcUy-JEGXtKd151VnDKhqs4f_bcCAsg7EcxYc2ky-mETUxYbkR4_IeUIsNTSxc5GI-KjJvwYb8HxDg-IgjmwCFQCO20xENfPjRVwWVIUzoxam-N_V1rLf_FCTPmboqGUunbu7PuJcNowpm7EmwYCl8m8uSqdftJ1ovhphjb5zL0yzmjAk6arVOSFr7gUP5jELpejhvT010h-sHkC8InIi04n4AvloKz6Sk002FlT1lzgu9jVuV2nRTKZRIqj_58tOnMkqirKbvbY_fJ14xcE7Py_OVvC1dKssS0ZPzC3MOuyHOhw";

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// A token for `sub` signed with `key` under `kid`.
fn signed(sub: &str, kid: &str, algorithm: Algorithm, key: &EncodingKey) -> String {
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_owned());
    encode(&header, &claims(sub), key).unwrap()
}

fn jwk(kid: &str, key: (&str, &str)) -> Value {
    json!({ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": key.1 })
}

fn eddsa(sub: &str, kid: &str, key: (&str, &str)) -> String {
    let key = EncodingKey::from_ed_der(&unhex(key.0));
    signed(sub, kid, Algorithm::EdDSA, &key)
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

    // RS256 and ES256 keys, as most identity providers publish them.
    *jwks.lock().unwrap() = json!({ "keys": [
        jwk("k2", KEY_2),
        { "kty": "EC", "crv": "P-256", "kid": "ec", "x": EC_X, "y": EC_Y },
        { "kty": "RSA", "alg": "RS256", "kid": "rsa", "n": RSA_N, "e": "AQAB" },
    ]});
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let ec = EncodingKey::from_ec_der(&unhex(&EC_KEY.concat()));
    let rsa = EncodingKey::from_rsa_der(&unhex(&RSA_KEY.concat()));
    assert_eq!(
        status(signed("user-a", "ec", Algorithm::ES256, &ec)).await,
        200
    );
    assert_eq!(
        status(signed("user-a", "rsa", Algorithm::RS256, &rsa)).await,
        200
    );
    // A key is used only with its own algorithm.
    assert_eq!(
        status(signed("user-a", "rsa", Algorithm::ES256, &ec)).await,
        401
    );
    assert_eq!(runtime.terminate(), Some(0));
}
