//! The shipped TypeScript functions, the default function names and the fake deployment
//! must agree: same paths, same kinds.

use std::path::Path;

use agent_runtime_convex::{ConvexClient, ConvexError, FunctionKind, FunctionNames};
use serde_json::json;

use crate::fake;

/// `(path, kind)` of every function exported from `convex/agentRuntime/*.ts`, read from the
/// `export const name = internalQuery(` / `internalMutation(` lines.
fn shipped_functions() -> Vec<(String, FunctionKind)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("convex/agentRuntime");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("the convex/agentRuntime folder") {
        let path = entry.unwrap().path();
        let Some(module) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("export const ") else {
                continue;
            };
            let Some((name, builder)) = rest.split_once(" = ") else {
                continue;
            };
            let kind = if builder.starts_with("internalQuery(") {
                FunctionKind::Query
            } else if builder.starts_with("internalMutation(") {
                FunctionKind::Mutation
            } else {
                continue;
            };
            found.push((format!("agentRuntime/{module}:{name}"), kind));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

fn default_paths(names: &FunctionNames) -> Vec<&str> {
    vec![
        &names.sessions_create,
        &names.sessions_get,
        &names.sessions_update,
        &names.sessions_list,
        &names.sessions_remove,
        &names.events_append,
        &names.events_after,
        &names.blobs_generate_upload_url,
        &names.blobs_commit,
        &names.blobs_get,
        &names.blobs_list,
        &names.blobs_remove,
        &names.blobs_remove_prefix,
        &names.profiles_list,
        &names.profiles_get,
        &names.profiles_put,
        &names.profiles_remove,
        &names.ping,
        &names.api_keys_create,
        &names.api_keys_by_hash,
        &names.api_keys_list,
        &names.api_keys_revoke,
    ]
    .into_iter()
    .map(String::as_str)
    .collect()
}

#[test]
fn every_default_name_is_a_shipped_function() {
    let shipped = shipped_functions();
    let defaults = FunctionNames::default();
    let paths = default_paths(&defaults);
    assert_eq!(shipped.len(), paths.len(), "shipped: {shipped:?}");
    for path in paths {
        assert!(
            shipped.iter().any(|(p, _)| p == path),
            "{path} is not exported by convex/agentRuntime"
        );
    }
}

#[tokio::test]
async fn the_fake_serves_every_shipped_function_with_the_same_kind() {
    let (_fake, config) = fake().await;
    let client = ConvexClient::new(&config).unwrap();
    for (path, kind) in shipped_functions() {
        // Empty arguments: a validation error is fine, a missing or mis-kinded function not.
        match client.call(kind, &path, json!({})).await {
            Ok(_) => {}
            Err(ConvexError::Function { message, .. }) => assert!(
                !message.contains("Could not find") && !message.contains("Trying to execute"),
                "{path}: {message}"
            ),
            Err(other) => panic!("{path}: {other}"),
        }
    }
}
