//! The schema of each dialect, embedded in the binary and applied at connect.
//!
//! The SQL lives in `migrations/<dialect>/<version>_<description>.sql`, the layout sqlx's
//! tools use, and is embedded with `include_str!`. The `sqlx::migrate!` macro would do the
//! same but needs sqlx's `macros` feature, which builds every enabled driver (with
//! SQLite's C sources and the TLS library) a second time for the compiler's proc-macro
//! host; a short table here costs nothing. Applied migrations are recorded in
//! `_sqlx_migrations` with a checksum, so editing a released file is detected at start.

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::config::SqlDialect;

/// One embedded migration: version, description, SQL.
type Embedded = (i64, &'static str, &'static str);

const SQLITE: &[Embedded] = &[
    (
        1,
        "sessions and events",
        include_str!("../migrations/sqlite/0001_sessions_and_events.sql"),
    ),
    (
        2,
        "api keys",
        include_str!("../migrations/sqlite/0002_api_keys.sql"),
    ),
    (
        3,
        "session budgets",
        include_str!("../migrations/sqlite/0003_session_budgets.sql"),
    ),
    (
        4,
        "session forks",
        include_str!("../migrations/sqlite/0004_session_forks.sql"),
    ),
];

const POSTGRES: &[Embedded] = &[
    (
        1,
        "sessions and events",
        include_str!("../migrations/postgres/0001_sessions_and_events.sql"),
    ),
    (
        2,
        "api keys",
        include_str!("../migrations/postgres/0002_api_keys.sql"),
    ),
    (
        3,
        "session budgets",
        include_str!("../migrations/postgres/0003_session_budgets.sql"),
    ),
    (
        4,
        "session forks",
        include_str!("../migrations/postgres/0004_session_forks.sql"),
    ),
];

/// The migrator for `dialect`, holding every migration of this build.
pub(crate) fn migrator(dialect: SqlDialect) -> Migrator {
    let embedded = match dialect {
        SqlDialect::Sqlite => SQLITE,
        SqlDialect::Postgres => POSTGRES,
    };
    let migrations = embedded
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                description.into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under `migrations/<dialect>/` must be in the table above, with the
    /// version of its name, or it would silently never run.
    #[test]
    fn every_migration_file_is_embedded() {
        for (dir, embedded) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let path = format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR"));
            let mut on_disk: Vec<(i64, String)> = std::fs::read_dir(&path)
                .unwrap()
                .map(|entry| entry.unwrap().file_name().into_string().unwrap())
                .filter(|name| name.ends_with(".sql"))
                .map(|name| {
                    let version = name.split('_').next().unwrap().parse().unwrap();
                    let sql = std::fs::read_to_string(format!("{path}/{name}")).unwrap();
                    (version, sql)
                })
                .collect();
            on_disk.sort();
            let table: Vec<(i64, String)> = embedded
                .iter()
                .map(|&(version, _, sql)| (version, sql.to_owned()))
                .collect();
            assert_eq!(
                on_disk, table,
                "migrations/{dir} and the embedded table differ"
            );
        }
    }
}
