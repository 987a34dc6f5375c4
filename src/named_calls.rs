//! Adapters whose failed calls name themselves: [`NamedSandboxes`] wraps a
//! `SandboxProvider`, and every sandbox it makes or opens, and [`NamedProfiles`] a
//! `ProfileSource`, so that a failed call's `AdapterError` says which call it was
//! (`Sandbox::read_file`, `ProfileSource::list`) and what about, as `MeasuredStore` and
//! `MeasuredBlobs` (`src/metrics.rs`) do for the stores. The one place these adapters'
//! errors get their operation.

use std::sync::Arc;

use agent_runtime_api::{
    AdapterError, AdapterResult, AgentProcess, CommandSpec, FileReader, FileStat, FileTree,
    ProfileBundle, ProfileSource, RelPath, Sandbox, SandboxDir, SandboxInfo, SandboxProvider,
    SandboxSpec, async_trait,
};
use bytes::Bytes;

/// A sandbox provider whose failed calls, and whose sandboxes' failed calls, carry their
/// operation.
pub struct NamedSandboxes {
    inner: Arc<dyn SandboxProvider>,
}

impl NamedSandboxes {
    /// Wraps `inner`.
    pub fn wrap(inner: Arc<dyn SandboxProvider>) -> Arc<dyn SandboxProvider> {
        Arc::new(Self { inner })
    }
}

#[async_trait]
impl SandboxProvider for NamedSandboxes {
    async fn create(&self, spec: &SandboxSpec) -> AdapterResult<Box<dyn Sandbox>> {
        let sandbox = self.inner.create(spec).await.map_err(|error| {
            error
                .with_operation("SandboxProvider::create")
                .with_context("session", &spec.session_id)
        })?;
        Ok(Box::new(NamedSandbox { inner: sandbox }))
    }

    async fn list_owned(&self, owner_tag: &str) -> AdapterResult<Vec<SandboxInfo>> {
        self.inner
            .list_owned(owner_tag)
            .await
            .map_err(|error| error.with_operation("SandboxProvider::list_owned"))
    }

    async fn open(&self, id: &str) -> AdapterResult<Box<dyn Sandbox>> {
        let sandbox = self.inner.open(id).await.map_err(|error| {
            error
                .with_operation("SandboxProvider::open")
                .with_context("sandbox", id)
        })?;
        Ok(Box::new(NamedSandbox { inner: sandbox }))
    }
}

/// A sandbox whose failed calls carry their operation and the sandbox's id.
struct NamedSandbox {
    inner: Box<dyn Sandbox>,
}

impl NamedSandbox {
    fn named(&self, operation: &'static str) -> impl FnOnce(AdapterError) -> AdapterError + '_ {
        move |error| {
            error
                .with_operation(operation)
                .with_context("sandbox", self.inner.id())
        }
    }
}

#[async_trait]
impl Sandbox for NamedSandbox {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn workspace_path(&self) -> &str {
        self.inner.workspace_path()
    }

    fn agent_home_path(&self) -> &str {
        self.inner.agent_home_path()
    }

    async fn write_files(&self, dir: SandboxDir, files: &FileTree) -> AdapterResult<()> {
        let written = self.inner.write_files(dir, files).await;
        written.map_err(self.named("Sandbox::write_files"))
    }

    async fn write_batch(&self, writes: &[(SandboxDir, &FileTree)]) -> AdapterResult<()> {
        let written = self.inner.write_batch(writes).await;
        written.map_err(self.named("Sandbox::write_batch"))
    }

    async fn list_files(
        &self,
        dir: SandboxDir,
        max_entries: usize,
    ) -> AdapterResult<Vec<FileStat>> {
        let listed = self.inner.list_files(dir, max_entries).await;
        listed.map_err(self.named("Sandbox::list_files"))
    }

    async fn read_file(
        &self,
        dir: SandboxDir,
        path: &RelPath,
        max_bytes: u64,
    ) -> AdapterResult<Bytes> {
        let read = self.inner.read_file(dir, path, max_bytes).await;
        read.map_err(|error| self.named("Sandbox::read_file")(error).with_context("path", path))
    }

    async fn open_file(
        &self,
        dir: SandboxDir,
        path: &RelPath,
        max_bytes: u64,
    ) -> AdapterResult<FileReader> {
        let opened = self.inner.open_file(dir, path, max_bytes).await;
        opened.map_err(|error| self.named("Sandbox::open_file")(error).with_context("path", path))
    }

    async fn spawn(&self, command: &CommandSpec) -> AdapterResult<AgentProcess> {
        let spawned = self.inner.spawn(command).await;
        spawned.map_err(|error| {
            self.named("Sandbox::spawn")(error).with_context("program", &command.program)
        })
    }

    async fn terminate(&self) -> AdapterResult<()> {
        let terminated = self.inner.terminate().await;
        terminated.map_err(self.named("Sandbox::terminate"))
    }

    async fn assign(&self, session_id: &str) -> AdapterResult<()> {
        let assigned = self.inner.assign(session_id).await;
        assigned.map_err(|error| {
            self.named("Sandbox::assign")(error).with_context("session", session_id)
        })
    }
}

/// A profile source whose failed calls carry their operation and the profile's name.
pub struct NamedProfiles {
    inner: Arc<dyn ProfileSource>,
}

impl NamedProfiles {
    /// Wraps `inner`.
    pub fn wrap(inner: Arc<dyn ProfileSource>) -> Arc<dyn ProfileSource> {
        Arc::new(Self { inner })
    }
}

#[async_trait]
impl ProfileSource for NamedProfiles {
    async fn list(&self) -> AdapterResult<Vec<String>> {
        let listed = self.inner.list().await;
        listed.map_err(|error| error.with_operation("ProfileSource::list"))
    }

    async fn load(&self, name: &str) -> AdapterResult<ProfileBundle> {
        let loaded = self.inner.load(name).await;
        loaded.map_err(|error| {
            error
                .with_operation("ProfileSource::load")
                .with_context("profile", name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_runtime_api::contract::Behaviour;

    /// Runs `behaviour` against local sandboxes (no isolation) seen through the wrapper.
    async fn on_named_local(behaviour: Behaviour<dyn SandboxProvider>) {
        let root = tempfile::tempdir().unwrap();
        let mut config = agent_runtime_local::LocalSandboxConfig::new(root.path().to_owned());
        config.isolation = agent_runtime_local::Isolation::DangerouslyNone;
        let provider = NamedSandboxes::wrap(agent_runtime_local::build(config).unwrap());
        behaviour.check(provider.as_ref()).await;
    }

    agent_runtime_api::sandbox_contract!(named_sandboxes, with on_named_local);

    agent_runtime_api::profile_source_contract!(named_profiles, async {
        NamedProfiles::wrap(Arc::new(
            agent_runtime_api::memory::MemoryProfileSource::new(
                agent_runtime_api::contract::sample_bundles(),
            ),
        ))
    });

    #[tokio::test]
    async fn a_failed_profile_load_names_its_operation_and_profile() {
        let profiles = NamedProfiles::wrap(Arc::new(
            agent_runtime_api::memory::MemoryProfileSource::new([]),
        ));
        let error = profiles.load("missing").await.unwrap_err();
        assert_eq!(error.kind(), agent_runtime_api::ErrorKind::NotFound);
        assert_eq!(error.operation(), Some("ProfileSource::load"));
        assert!(error.to_string().contains("profile=missing"), "{error}");
    }

    #[tokio::test]
    async fn a_failed_call_names_its_operation_and_sandbox() {
        let root = tempfile::tempdir().unwrap();
        let mut config = agent_runtime_local::LocalSandboxConfig::new(root.path().to_owned());
        config.isolation = agent_runtime_local::Isolation::DangerouslyNone;
        let provider = NamedSandboxes::wrap(agent_runtime_local::build(config).unwrap());
        let spec = SandboxSpec {
            session_id: "s-1".into(),
            owner_tag: "t".into(),
            ..Default::default()
        };
        let sandbox = provider.create(&spec).await.unwrap();
        let missing = RelPath::new("nowhere.txt").unwrap();
        let error = sandbox
            .read_file(SandboxDir::Workspace, &missing, 10)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), agent_runtime_api::ErrorKind::NotFound);
        assert_eq!(error.operation(), Some("Sandbox::read_file"));
        let text = error.to_string();
        assert!(text.starts_with("Sandbox::read_file: not found"), "{text}");
        assert!(
            text.contains(&format!("sandbox={}", sandbox.id())),
            "{text}"
        );
        assert!(text.contains("path=nowhere.txt"), "{text}");

        let error = provider.open("no-such-sandbox").await.err().unwrap();
        assert_eq!(error.operation(), Some("SandboxProvider::open"));
        sandbox.terminate().await.unwrap();
    }
}
