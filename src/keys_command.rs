//! `agent-runtime keys`: creates, lists and revokes API keys in the configured session
//! store. A created key is printed once, on stdout alone, so it can be piped into a
//! secret store; everything else goes to stderr.

use agent_runtime_api::{ApiKeyRecord, QuotaOverrides, SessionStore};

use crate::auth::keys::{generate_key, hash_key, validate_key_name};
use crate::catalog;
use crate::cli::{KeyCreateArgs, KeysCommand};
use crate::config::{AuthConfig, Config, StoreConfig};

/// Runs one `keys` subcommand; `Err` is the message to print before exiting non-zero.
pub async fn run(config: &Config, command: KeysCommand) -> Result<(), String> {
    if matches!(config.store, StoreConfig::Memory {}) {
        return Err(
            "store.kind = \"memory\" keeps nothing once this command exits; API keys need \
             a store the server shares (sqlite, postgres, convex)"
                .to_owned(),
        );
    }
    let store = catalog::build_store(config)
        .await
        .map_err(|e| e.to_string())?;
    match command {
        KeysCommand::Create(args) => {
            let key = create(store.as_ref(), &args).await?;
            if !matches!(config.auth, AuthConfig::Principals(_)) {
                eprintln!(
                    "note: auth.mode is \"{}\"; API keys are accepted only with mode = \"principals\"",
                    config.auth.mode()
                );
            }
            eprintln!("created key {:?}; it is shown only now:", args.name);
            println!("{key}");
            Ok(())
        }
        KeysCommand::List => {
            let keys = store
                .list_keys()
                .await
                .map_err(|e| format!("listing keys failed: {e}"))?;
            print!("{}", table(&keys));
            Ok(())
        }
        KeysCommand::Revoke { name } => {
            let removed = store
                .revoke_key(&name)
                .await
                .map_err(|e| format!("revoking {name:?} failed: {e}"))?;
            if !removed {
                return Err(format!("no key named {name:?}"));
            }
            eprintln!("revoked key {name:?}");
            Ok(())
        }
    }
}

/// Makes, stores and returns a new key.
pub async fn create(store: &dyn SessionStore, args: &KeyCreateArgs) -> Result<String, String> {
    validate_key_name(&args.name)?;
    let key = generate_key().map_err(|e| format!("no randomness for a key: {e}"))?;
    let record = ApiKeyRecord {
        name: args.name.clone(),
        key_hash: hash_key(&key),
        admin: args.admin,
        quotas: QuotaOverrides {
            max_live_sessions: args.max_live,
            max_stored_sessions: args.max_stored,
            creates_per_minute: args.creates_per_minute,
            messages_per_minute: args.messages_per_minute,
        },
        created_at: chrono::Utc::now(),
    };
    store
        .create_key(&record)
        .await
        .map_err(|e| match e.kind() {
            agent_runtime_api::ErrorKind::Conflict => {
                format!("a key named {:?} exists; revoke it first", args.name)
            }
            _ => format!("storing the key failed: {e}"),
        })?;
    Ok(key)
}

/// One line per key: name, admin, the limits it sets (`-` keeps the default), created.
fn table(keys: &[ApiKeyRecord]) -> String {
    let limit = |value: Option<u32>| value.map_or("-".to_owned(), |v| v.to_string());
    let mut out =
        String::from("NAME\tADMIN\tMAX_LIVE\tMAX_STORED\tCREATES/MIN\tMESSAGES/MIN\tCREATED\n");
    for key in keys {
        let q = &key.quotas;
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            key.name,
            if key.admin { "yes" } else { "no" },
            limit(q.max_live_sessions),
            limit(q.max_stored_sessions),
            limit(q.creates_per_minute),
            limit(q.messages_per_minute),
            key.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ));
    }
    out
}
