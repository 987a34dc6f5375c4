//! A fresh PostgreSQL database per test, dropped afterwards, so runs do not collide.

use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use agent_runtime_sql::SqlStoreConfig;
use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// Where the test server is; a database on it is used only to create and drop others.
const URL_VAR: &str = "AGENT_RUNTIME_TEST_POSTGRES_URL";
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database made for one test.
pub struct TestDatabase {
    admin: PgPool,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates the database. Without a reachable server this fails the test under CI
    /// (env `CI` set) and otherwise prints why the test is skipped and returns `None`.
    pub async fn create() -> Option<Self> {
        let admin_url = std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let admin = match connect(&admin_url).await {
            Ok(pool) => pool,
            Err(e) => {
                let why = format!("PostgreSQL at {URL_VAR} (or {DEFAULT_URL}) unreachable: {e}");
                if std::env::var_os("CI").is_some() {
                    panic!("{why}");
                }
                eprintln!("\n!!!!! SKIPPED: {why}\n!!!!! set {URL_VAR} or start PostgreSQL\n");
                return None;
            }
        };
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "ar_test_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        // A leftover from an earlier run with the same pid would make CREATE fail.
        drop_database(&admin, &name).await;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create the test database");
        let url = with_database(&admin_url, &name);
        Some(Self { admin, name, url })
    }

    /// A store config for this database.
    pub fn config(&self) -> SqlStoreConfig {
        SqlStoreConfig {
            acquire_timeout: Some(Duration::from_secs(10)),
            ..SqlStoreConfig::new(self.url.clone())
        }
    }

    /// Runs `test`, drops the database whatever happened, then passes on a panic.
    pub async fn run(self, test: impl Future<Output = ()> + Send + 'static) {
        let outcome = tokio::spawn(test).await;
        drop_database(&self.admin, &self.name).await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

async fn connect(url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(PgConnectOptions::from_str(url)?)
        .await
}

async fn drop_database(admin: &PgPool, name: &str) {
    // FORCE ends the store's pooled connections, which may outlive the test body.
    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    if let Err(e) = sqlx::query(AssertSqlSafe(sql)).execute(admin).await {
        eprintln!("could not drop test database {name}: {e}");
    }
}

/// `url` with its database (the path) replaced by `name`, keeping any query.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}
