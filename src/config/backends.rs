//! The adapter sections: `[store]`, `[storage]`, `[profiles]`, `[sandbox]`.
//!
//! Each is a closed enum with one variant per backend, chosen in the file with
//! `kind = "..."`; the runtime builds the adapter in one `match` over it. The config loader
//! reads the `kind` key and picks the variant, so in a config file each section is flat:
//! `kind = "postgres"` beside `url = "..."`. An unknown kind names the ones available.

use std::path::PathBuf;

use serde::Deserialize;

/// `[store]`: where sessions and their event logs are kept.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum StoreConfig {
    /// A SQLite database file; the adapter's own config (`url` is `sqlite://PATH[?options]`,
    /// a relative PATH resolved against the config file's directory when the config is
    /// loaded; the pool keys size the read pool).
    Sqlite(agent_runtime_sql::SqlStoreConfig),
    /// A PostgreSQL database; the adapter's own config, whose `Debug` hides the URL's
    /// password.
    Postgres(agent_runtime_sql::SqlStoreConfig),
    /// Convex tables, on the deployment of the `[convex]` section.
    Convex {},
    /// In process memory; lost on restart.
    Memory {},
}

/// `[storage]`: where workspace files and agent transcripts are kept.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum StorageConfig {
    /// A directory on the local file system.
    Filesystem(FilesystemStorageConfig),
    /// An S3-compatible bucket.
    S3(agent_runtime_object_store::S3Config),
    /// Convex file storage, on the deployment of the `[convex]` section.
    Convex {},
    /// In process memory; lost on restart.
    Memory {},
}

/// `[storage] kind = "filesystem"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemStorageConfig {
    /// The root directory; relative to the config file's directory unless absolute.
    pub root: PathBuf,
}

/// `[profiles]`: where agent profiles are read from.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum ProfilesConfig {
    /// A Convex table, on the deployment of the `[convex]` section.
    Convex {},
    /// A directory of profile files.
    Directory(DirectoryProfilesConfig),
}

/// `[profiles] kind = "directory"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryProfilesConfig {
    /// The directory; relative to the config file's directory unless absolute.
    pub path: PathBuf,
}

/// `[sandbox]`: where agents run.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum SandboxConfig {
    /// Modal sandboxes over Modal's gRPC API.
    Modal(Box<agent_runtime_modal::ModalConfig>),
    /// Local processes, one working directory per session; the adapter's own config
    /// (`root` relative to the config file's directory unless absolute).
    Local(agent_runtime_local::LocalSandboxConfig),
}
