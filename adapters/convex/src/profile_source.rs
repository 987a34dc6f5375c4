//! [`ProfileSource`] over a Convex table.

use agent_runtime_api::{
    AdapterError, AdapterResult, FileEntry, FileTree, ProfileBundle, ProfileSource, RelPath,
    async_trait,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::records::{invalid, text};
use crate::{ConvexClient, FunctionNames};

/// Agent profiles stored as documents of the `agentRuntimeProfiles` table:
/// `{name, manifest, files: [{path, contentBase64, executable}]}`.
///
/// A profile document must stay under Convex's 1 MiB document limit, so about 700 KiB of
/// files in all (base64 adds a third).
#[derive(Debug, Clone)]
pub struct ConvexProfileSource {
    client: ConvexClient,
    functions: FunctionNames,
}

impl ConvexProfileSource {
    /// A source calling `functions` through `client`.
    pub fn new(client: ConvexClient, functions: FunctionNames) -> Self {
        ConvexProfileSource { client, functions }
    }

    /// Stores `bundle`, replacing the profile of the same name; for publishing profiles.
    ///
    /// # Errors
    /// `InvalidInput` for a name that is not a single safe path component.
    pub async fn put(&self, bundle: &ProfileBundle) -> AdapterResult<()> {
        check_name(&bundle.name)?;
        let files: Vec<Value> = bundle
            .files
            .files
            .iter()
            .map(|f| {
                json!({
                    "path": f.path.as_str(),
                    "contentBase64": STANDARD.encode(&f.contents),
                    "executable": f.executable,
                })
            })
            .collect();
        let profile = json!({"name": bundle.name, "manifest": bundle.manifest, "files": files});
        self.client
            .mutation(&self.functions.profiles_put, json!({"profile": profile}))
            .await?;
        Ok(())
    }

    /// Deletes the profile `name`; a missing profile is fine.
    pub async fn remove(&self, name: &str) -> AdapterResult<()> {
        check_name(name)?;
        self.client
            .mutation(&self.functions.profiles_remove, json!({"name": name}))
            .await?;
        Ok(())
    }
}

#[async_trait]
impl ProfileSource for ConvexProfileSource {
    async fn list(&self) -> AdapterResult<Vec<String>> {
        let names = self
            .client
            .query(&self.functions.profiles_list, json!({}))
            .await?;
        let mut names = names
            .as_array()
            .ok_or_else(|| invalid(format!("profile list is {names}")))?
            .iter()
            .map(|n| n.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("a profile name is not a string".into()))?;
        // The contract promises sorted, unique names whatever the deployment returns.
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn load(&self, name: &str) -> AdapterResult<ProfileBundle> {
        check_name(name)?;
        let found = self
            .client
            .query(&self.functions.profiles_get, json!({"name": name}))
            .await?;
        if found.is_null() {
            return Err(AdapterError::not_found(format!("profile {name}")));
        }
        let files = found
            .get("files")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid(format!("profile {name} has no `files` list")))?;
        Ok(ProfileBundle {
            name: name.to_owned(),
            manifest: text(&found, "manifest")?.to_owned(),
            files: file_tree(name, files)?,
        })
    }
}

/// A profile name must be one safe path component: it names a folder elsewhere.
fn check_name(name: &str) -> AdapterResult<()> {
    match RelPath::new(name) {
        Ok(_) if !name.contains('/') => Ok(()),
        _ => Err(AdapterError::invalid_input(format!(
            "profile name {name:?} is not a single path component"
        ))),
    }
}

fn file_tree(name: &str, files: &[Value]) -> AdapterResult<FileTree> {
    let mut entries = Vec::with_capacity(files.len());
    for file in files {
        let raw = text(file, "path")?;
        let path = RelPath::new(raw)
            .map_err(|err| invalid(format!("profile {name} holds a bad file path: {err}")))?;
        let contents = STANDARD
            .decode(text(file, "contentBase64")?)
            .map_err(|err| invalid(format!("profile {name} file {raw}: bad base64: {err}")))?;
        entries.push(FileEntry {
            path,
            contents: Bytes::from(contents),
            executable: file
                .get("executable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    // FileTree holds each path once; a later duplicate wins, as FileTree::insert does.
    entries.reverse();
    entries.dedup_by(|later, earlier| later.path == earlier.path);
    entries.reverse();
    Ok(FileTree { files: entries })
}
