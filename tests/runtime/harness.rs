use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime::auth::Principal;
use agent_runtime::error::RuntimeError;
use agent_runtime::metrics::{MeasuredBlobs, MeasuredStore, Metrics};
use agent_runtime::runtime::{
    Adapters, AgentSettings, CreateSession, Limits, LiveSink, MessageContent, Published,
    RuntimeSettings, SessionManager,
};
use agent_runtime_api::memory::{MemoryBlobStore, MemoryProfileSource, MemorySessionStore};
use agent_runtime_api::{
    Event, EventKind, FileTree, ProfileBundle, RelPath, SessionRecord, SessionStore,
};
use serde_json::{Value, json};
use tokio::sync::broadcast;

pub const PROFILE: &str = r#"
description = "Test agent"
system_prompt = { text = "You work on {{ SESSION_ID }}.", mode = "append" }
metadata_schema = { type = "object", properties = { topic = { type = "string" } } }
"#;

/// The test profile, but tool calls it does not allow are asked of the clients.
pub const ASKING_PROFILE: &str = r#"
description = "Test agent whose tool calls are approved by a person"
on_unlisted_tool = "ask"
"#;

/// [`ASKING_PROFILE`] whose requests wait for an answer only briefly.
pub const HURRIED_PROFILE: &str = r#"
description = "Test agent whose tool calls wait for a person for a second"
on_unlisted_tool = "ask"
answer_timeout = "1s"
"#;

/// A profile whose sessions may take two turns, a thousand tokens and a dollar each.
pub const BUDGETED_PROFILE: &str = r#"
description = "Test agent on a budget"

[budget]
max_turns = 2
max_tokens = 1000
max_cost_usd = 1.0
"#;

pub struct Harness {
    pub manager: SessionManager,
    pub blobs: Arc<MemoryBlobStore>,
    pub alice: Principal,
    pub bob: Principal,
    /// Every persisted event, as the manager hands it to a transport.
    published: broadcast::Sender<(Arc<str>, Event)>,
    root: tempfile::TempDir,
}

/// The harness's stand-in for the transports: the sink that sees every persisted event.
struct Relay(broadcast::Sender<(Arc<str>, Event)>);

#[agent_runtime_api::async_trait]
impl LiveSink for Relay {
    async fn appended(&self, published: &Published) {
        let _ = self
            .0
            .send((published.session_id().into(), published.event().clone()));
    }
}

pub fn settings() -> RuntimeSettings {
    RuntimeSettings {
        agent: AgentSettings {
            command: agent_runtime_testkit::bin_path("scripted-agent")
                .display()
                .to_string(),
            args: Vec::new(),
            env: BTreeMap::new(),
            include_partial_messages: false,
        },
        sandbox_env: BTreeMap::from([("PATH".into(), std::env::var("PATH").unwrap_or_default())]),
        vars: BTreeMap::new(),
        idle_timeout: Duration::from_secs(900),
        sync_interval: Duration::from_secs(30),
        max_sessions: 100,
        quotas: Default::default(),
        limits: Limits::default(),
        instance_tag: "runtime-tests".into(),
        agent_ready_timeout: Duration::from_secs(20),
        tools: None,
        store_patience: agent_runtime::runtime::STORE_PATIENCE,
    }
}

impl Harness {
    pub async fn start() -> Self {
        Self::with_settings(settings()).await
    }

    pub async fn with_settings(settings: RuntimeSettings) -> Self {
        Self::with_store(settings, Arc::new(MemorySessionStore::new())).await
    }

    /// A harness over `store` instead of a plain memory store.
    pub async fn with_store(settings: RuntimeSettings, store: Arc<dyn SessionStore>) -> Self {
        Self::build(settings, store, None).await
    }

    /// A harness that records into `metrics`, its stores measured as the catalog's are.
    pub async fn measured(metrics: Arc<Metrics>) -> Self {
        Self::build(
            settings(),
            Arc::new(MemorySessionStore::new()),
            Some(metrics),
        )
        .await
    }

    async fn build(
        settings: RuntimeSettings,
        store: Arc<dyn SessionStore>,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        let root = tempfile::tempdir().unwrap();
        let mut files = FileTree::default();
        files.insert(
            RelPath::new("CLAUDE.md").unwrap(),
            "Session {{ SESSION_ID }}\n",
        );
        let profiles = MemoryProfileSource::new([
            ProfileBundle {
                name: "tester".into(),
                manifest: PROFILE.into(),
                files,
            },
            ProfileBundle {
                name: "asker".into(),
                manifest: ASKING_PROFILE.into(),
                files: FileTree::default(),
            },
            ProfileBundle {
                name: "hurried".into(),
                manifest: HURRIED_PROFILE.into(),
                files: FileTree::default(),
            },
            ProfileBundle {
                name: "budgeted".into(),
                manifest: BUDGETED_PROFILE.into(),
                files: FileTree::default(),
            },
        ]);
        let sandboxes = agent_runtime_local::build(agent_runtime_local::LocalSandboxConfig::new(
            root.path().join("sandboxes"),
        ))
        .unwrap();
        let blobs = Arc::new(MemoryBlobStore::new());
        let mut adapters = Adapters {
            store,
            blobs: blobs.clone(),
            profiles: Arc::new(profiles),
            sandboxes,
        };
        let manager = match metrics {
            Some(metrics) => {
                adapters.store = MeasuredStore::wrap(adapters.store, "memory", metrics.clone());
                adapters.blobs = MeasuredBlobs::wrap(adapters.blobs, "memory", metrics.clone());
                SessionManager::with_metrics(adapters, settings, metrics)
            }
            None => SessionManager::new(adapters, settings),
        };
        let (published, _) = broadcast::channel(64 * 1024);
        assert!(manager.bus().set_sink(Arc::new(Relay(published.clone()))));
        Harness {
            manager,
            blobs,
            published,
            alice: Principal::new("alice"),
            bob: Principal::new("bob"),
            root,
        }
    }

    /// Where the local sandboxes are made.
    pub fn sandbox_root(&self) -> std::path::PathBuf {
        self.root.path().join("sandboxes")
    }

    pub async fn create(&self) -> SessionRecord {
        self.try_create().await.expect("create")
    }

    /// Creates a session of the test profile, as a client would with no options.
    pub async fn try_create(&self) -> Result<SessionRecord, RuntimeError> {
        let request = CreateSession {
            agent_type: "tester".into(),
            ..Default::default()
        };
        self.manager.create(&self.alice, request).await
    }

    /// Creates a session of the profile whose tool calls are asked of the clients.
    pub async fn create_asking(&self) -> SessionRecord {
        self.create_of("asker").await
    }

    /// Creates a session of the profile `agent_type`.
    pub async fn create_of(&self, agent_type: &str) -> SessionRecord {
        let request = CreateSession {
            agent_type: agent_type.into(),
            ..Default::default()
        };
        self.manager
            .create(&self.alice, request)
            .await
            .expect("create")
    }

    /// Asserts that creating a session fails with `code` and leaves a `failed` record
    /// whose error has that code (never a half-made session); returns the record.
    pub async fn assert_create_fails(&self, code: &str) -> SessionRecord {
        let err = self.try_create().await.unwrap_err();
        assert_eq!(err.code.as_str(), code, "{err}");
        let listed = self
            .manager
            .list(&self.alice, Default::default())
            .await
            .unwrap();
        let record = listed.sessions.into_iter().next().expect("a failed record");
        assert_eq!(record.status, agent_runtime_api::SessionStatus::Failed);
        assert_eq!(record.error.as_ref().unwrap().code, code);
        record
    }

    pub async fn say(&self, session_id: &str, text: &str) -> u64 {
        self.manager
            .send_message(
                &self.alice,
                session_id,
                MessageContent::new(json!(text)).unwrap(),
                None,
            )
            .await
            .expect("message")
            .seq
    }

    /// Sends a message and waits for the turn's `result` event and the actor's handling
    /// of it (a `get` is answered by the actor only after it has dealt with the line).
    pub async fn turn(&self, session_id: &str, text: &str) -> Value {
        let mut watch = self.watch();
        let seq = self.say(session_id, text).await;
        let result = watch.result_after(session_id, seq).await;
        self.manager.get(&self.alice, session_id).await.unwrap();
        result
    }

    pub fn watch(&self) -> Watch {
        Watch {
            events: self.published.subscribe(),
        }
    }

    /// A workspace file's bytes, downloaded as a client would.
    pub async fn file(&self, session_id: &str, path: &str) -> Vec<u8> {
        let mut file = self
            .manager
            .file(&self.alice, session_id, path)
            .await
            .expect("file");
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut file.body, &mut bytes)
            .await
            .unwrap();
        assert_eq!(bytes.len() as u64, file.size, "the size said at open");
        bytes
    }

    /// The whole persisted log, page after page.
    pub async fn log(&self, session_id: &str) -> Vec<Event> {
        let mut log: Vec<Event> = Vec::new();
        loop {
            let after = log.last().map_or(0, |e| e.seq);
            let page = self
                .manager
                .events(&self.alice, session_id, after, 1000)
                .await
                .unwrap();
            log.extend(page.events);
            if !page.has_more {
                return log;
            }
        }
    }
}

pub struct Watch {
    events: broadcast::Receiver<(Arc<str>, Event)>,
}

impl Watch {
    /// The next persisted event of `session_id` that satisfies `pred`.
    pub async fn until(&mut self, session_id: &str, mut pred: impl FnMut(&Event) -> bool) -> Event {
        let wait = async {
            loop {
                match self.events.recv().await {
                    Ok((id, event)) if &*id == session_id => {
                        if pred(&event) {
                            return event;
                        }
                    }
                    Ok(_) => {}
                    Err(error) => panic!("bus: {error}"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .expect("event in time")
    }

    /// The next persisted event of `session_id` of this kind.
    pub async fn next_of(&mut self, session_id: &str, kind: EventKind) -> Event {
        self.until(session_id, |e| e.kind == kind).await
    }

    /// The seqs of `session_id` published since the last call, in order.
    pub fn published(&mut self, session_id: &str) -> Vec<u64> {
        let mut seqs = Vec::new();
        while let Ok((id, event)) = self.events.try_recv() {
            if &*id == session_id {
                seqs.push(event.seq);
            }
        }
        seqs
    }

    pub async fn result_after(&mut self, session_id: &str, seq: u64) -> Value {
        let event = self
            .until(session_id, |e| {
                e.seq > seq && e.kind == EventKind::Agent && data(e)["type"] == "result"
            })
            .await;
        data(&event)
    }

    pub async fn status(&mut self, session_id: &str, status: &str) -> Event {
        self.until(session_id, |e| {
            e.kind == EventKind::Status && data(e)["status"] == status
        })
        .await
    }
}

pub fn data(event: &Event) -> Value {
    serde_json::from_str(event.data.get()).unwrap()
}

/// The statuses a log went through, in order.
pub fn statuses(log: &[Event]) -> Vec<String> {
    log.iter()
        .filter(|e| e.kind == EventKind::Status)
        .map(|e| data(e)["status"].as_str().unwrap().to_owned())
        .collect()
}

/// Asserts seqs are 1..=n without gaps.
pub fn assert_gap_free(events: &[Event]) {
    for (index, event) in events.iter().enumerate() {
        assert_eq!(
            event.seq,
            index as u64 + 1,
            "seq gap at index {index}: {events:#?}"
        );
    }
}
