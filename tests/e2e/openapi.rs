//! `GET /openapi.json` on the real binary: served without a token, the document the code
//! generates, and valid OpenAPI 3.1 for a real validator (`openapi-spec-validator`, which
//! scripts/test installs).

use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Http, Runtime, Setup};

fn python() -> Option<String> {
    match std::env::var("AGENT_RUNTIME_TEST_PYTHON") {
        Ok(python) => Some(python),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "AGENT_RUNTIME_TEST_PYTHON is not set; scripts/test installs openapi-spec-validator"
            );
            eprintln!(
                "SKIPPED: set AGENT_RUNTIME_TEST_PYTHON to a python with openapi-spec-validator"
            );
            None
        }
    }
}

/// Runs the validator on `document`; its verdict and what it printed.
fn validate(python: &str, document: &Value) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, document.to_string()).unwrap();
    let output = Command::new(python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&path)
        .output()
        .expect("python runs");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

#[tokio::test]
async fn the_served_document_is_valid_openapi_and_needs_no_token() {
    let mut setup = Setup::scripted();
    setup.extra_toml = "[auth]\nmode = \"shared-secret\"\nsecret = \"doc-secret\"\n".into();
    let runtime = Runtime::start(&setup);
    let (status, served) = Http::new(&runtime).get("/openapi.json").await;
    assert_eq!(status, 200, "{served}");
    assert_eq!(served, agent_runtime::transport::openapi::document());
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(runtime.terminate(), Some(0));

    let Some(python) = python() else {
        return;
    };
    let (valid, printed) = validate(&python, &served);
    assert!(
        valid,
        "openapi-spec-validator refused the document:\n{printed}"
    );
    // The validator does refuse a broken document, so its verdict above means something.
    let mut broken = served.clone();
    broken["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] =
        json!({ "$ref": "#/components/schemas/NoSuchThing" });
    let (valid, printed) = validate(&python, &broken);
    assert!(!valid, "a dangling $ref passed:\n{printed}");
}
