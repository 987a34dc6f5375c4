//! The runtime's metrics, exported at `/metrics` in the Prometheus text format through
//! `prometheus-client`.
//!
//! One [`Metrics`] per runtime, shared as an `Arc`: the session manager, the event writer
//! and each session's log record what happens in the runtime, the catalog's measuring
//! adapters ([`MeasuredStore`], [`MeasuredBlobs`]) time every store and storage call (and
//! name the operation and its session or key in a failed call's error), and
//! the transports count responses, connections and live sends. It lives here, outside
//! both, so that the runtime records metrics without knowing the transports.
//!
//! Every metric counts what this process did since it started.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_runtime_api::{
    AdapterError, AdapterResult, ApiKeyRecord, BlobKey, BlobMeta, BlobStore, Event, EventKind,
    SessionEvents, SessionFilter, SessionPage, SessionRecord, SessionStatus, SessionStore, Usage,
    async_trait,
};
use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Histograms of latencies: 100 µs to about 100 s, doubling.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 21))
}

/// Histograms of sandbox start phases: 10 ms to about 10 min, doubling.
fn start_phase() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 17))
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusCode {
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabel {
    transport: &'static str,
}

/// How a live event reached its clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SentOver {
    /// Queued on the sockets of its Socket.IO room.
    SocketIo,
    /// Handed to one SSE stream.
    Sse,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionLabels {
    status: &'static str,
    profile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProfileLabel {
    profile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    profile: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    adapter: &'static str,
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
    provider: &'static str,
}

/// The runtime's metrics and the registry that exports them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    sandbox_provider: &'static str,
    events: Family<TypeLabel, Counter>,
    /// The counters of `events`, one per kind in [`EventKind::ALL`]'s order, looked up
    /// once: the writer counts every event without taking the family's lock.
    events_by_kind: [Counter; EventKind::ALL.len()],
    persist_latency: Histogram,
    send_latency: Histograms<TransportLabel>,
    /// The histograms of `send_latency`, looked up once: every live event is observed.
    sent_over_socketio: Histogram,
    sent_over_sse: Histogram,
    batch_events: Histogram,
    queue_depth: Gauge,
    sessions: Family<SessionLabels, Gauge>,
    sessions_deleted: Counter,
    session_start: Histograms<PhaseLabels>,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<ProfileLabel, Counter<f64, std::sync::atomic::AtomicU64>>,
    turns: Family<ProfileLabel, Counter>,
    store_calls: Histograms<CallLabels>,
    store_errors: Family<CallLabels, Counter>,
    storage_calls: Histograms<CallLabels>,
    storage_errors: Family<CallLabels, Counter>,
    approvals_pending: Gauge,
    socketio_connections: Gauge,
    sse_streams: Gauge,
    live_events_missed: Counter,
    http_requests: Family<StatusCode, Counter>,
    warm_pool: WarmPoolMetrics,
}

/// The warm pool's metrics (`crate::warm_pool`), by pool: `*` for the shared pool, a
/// profile's name for that profile's own.
#[derive(Debug)]
struct WarmPoolMetrics {
    ready: Family<PoolLabel, Gauge>,
    takes: Family<TakeLabels, Counter>,
    age: Histograms<PoolLabel>,
    expired: Family<PoolLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TakeLabels {
    pool: String,
    outcome: &'static str,
}

impl WarmPoolMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "warm_pool_ready",
            "Warm sandboxes ready for a session now",
            self.ready.clone(),
        );
        r.register(
            "warm_pool_takes",
            "Sandbox creates that asked a warm pool: it had one (hit) or not (miss)",
            self.takes.clone(),
        );
        r.register_with_unit(
            "warm_pool_age",
            "Age of warm sandboxes when a session took them",
            Unit::Seconds,
            self.age.clone(),
        );
        r.register(
            "warm_pool_expired",
            "Warm sandboxes replaced for passing max_age",
            self.expired.clone(),
        );
    }
}

impl Default for Metrics {
    /// Metrics whose sandbox provider is unnamed (tests, embedders).
    fn default() -> Self {
        Self::new("unnamed")
    }
}

impl Metrics {
    /// Every metric at zero; `sandbox_provider` (the `[sandbox] kind`) labels start times.
    pub fn new(sandbox_provider: &'static str) -> Self {
        let events = Family::<TypeLabel, Counter>::default();
        let events_by_kind = EventKind::ALL.map(|kind| {
            let label = TypeLabel {
                r#type: kind.as_str(),
            };
            events.get_or_create(&label).clone()
        });
        let send_latency: Histograms<TransportLabel> = Family::new_with_constructor(latency);
        let sent_over = |transport| {
            send_latency
                .get_or_create(&TransportLabel { transport })
                .clone()
        };
        let (sent_over_socketio, sent_over_sse) = (sent_over("socketio"), sent_over("sse"));
        let mut metrics = Self {
            registry: Registry::with_prefix("agent_runtime"),
            sandbox_provider,
            events,
            events_by_kind,
            persist_latency: latency(),
            send_latency,
            sent_over_socketio,
            sent_over_sse,
            batch_events: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            queue_depth: Gauge::default(),
            sessions: Family::default(),
            sessions_deleted: Counter::default(),
            session_start: Family::new_with_constructor(start_phase),
            tokens: Family::default(),
            cost: Family::default(),
            turns: Family::default(),
            store_calls: Family::new_with_constructor(latency),
            store_errors: Family::default(),
            storage_calls: Family::new_with_constructor(latency),
            storage_errors: Family::default(),
            approvals_pending: Gauge::default(),
            socketio_connections: Gauge::default(),
            sse_streams: Gauge::default(),
            live_events_missed: Counter::default(),
            http_requests: Family::default(),
            warm_pool: WarmPoolMetrics {
                ready: Family::default(),
                takes: Family::default(),
                age: Family::new_with_constructor(start_phase),
                expired: Family::default(),
            },
        };
        let r = &mut metrics.registry;
        r.register(
            "events_appended",
            "Events persisted to session logs, by type",
            metrics.events.clone(),
        );
        r.register_with_unit(
            "event_persist_latency",
            "Time from an event's making (for an agent event, reading its line) until the store took it",
            Unit::Seconds,
            metrics.persist_latency.clone(),
        );
        r.register_with_unit(
            "event_send_latency",
            "Time from an event's making (for an agent event, reading its line) until it was queued on the sockets of its Socket.IO room (transport socketio) or handed to an SSE stream (transport sse)",
            Unit::Seconds,
            metrics.send_latency.clone(),
        );
        r.register(
            "writer_batch_events",
            "Events per batch append of the event writer (each attempt)",
            metrics.batch_events.clone(),
        );
        r.register(
            "writer_queue_depth",
            "Requests waiting in the event writer's queue",
            metrics.queue_depth.clone(),
        );
        r.register(
            "sessions",
            "Sessions this process holds (live, starting, or ending), by status and profile",
            metrics.sessions.clone(),
        );
        r.register(
            "sessions_deleted",
            "Sessions deleted",
            metrics.sessions_deleted.clone(),
        );
        r.register_with_unit(
            "session_start",
            "Time to bring sessions up (create and resume), by phase and sandbox provider",
            Unit::Seconds,
            metrics.session_start.clone(),
        );
        r.register(
            "tokens",
            "Tokens the agents reported, by profile and direction (input includes cache reads and writes)",
            metrics.tokens.clone(),
        );
        r.register(
            "cost_usd",
            "Cost in US dollars the agents reported, by profile",
            metrics.cost.clone(),
        );
        r.register(
            "turns",
            "Completed turns, by profile",
            metrics.turns.clone(),
        );
        r.register_with_unit(
            "store_call",
            "Session store calls, by adapter and operation",
            Unit::Seconds,
            metrics.store_calls.clone(),
        );
        r.register(
            "store_errors",
            "Session store calls that failed, by adapter and operation",
            metrics.store_errors.clone(),
        );
        r.register_with_unit(
            "storage_call",
            "Blob storage calls, by adapter and operation",
            Unit::Seconds,
            metrics.storage_calls.clone(),
        );
        r.register(
            "storage_errors",
            "Blob storage calls that failed, by adapter and operation",
            metrics.storage_errors.clone(),
        );
        r.register(
            "approvals_pending",
            "Requests for a person (permissions and questions) waiting for an answer",
            metrics.approvals_pending.clone(),
        );
        r.register(
            "socketio_connections",
            "Socket.IO connections open now",
            metrics.socketio_connections.clone(),
        );
        r.register(
            "sse_streams",
            "Server-Sent Events streams open now",
            metrics.sse_streams.clone(),
        );
        r.register(
            "live_events_missed",
            "Live events a Socket.IO client missed because its buffer was full (it fills the gap from the log)",
            metrics.live_events_missed.clone(),
        );
        r.register(
            "http_requests",
            "HTTP requests answered, by status code (Socket.IO traffic excluded)",
            metrics.http_requests.clone(),
        );
        metrics.warm_pool.register(r);
        metrics
    }

    /// The warm pool `pool` holds `ready` sandboxes now.
    pub fn warm_pool_ready(&self, pool: &str, ready: usize) {
        let label = PoolLabel {
            pool: pool.to_owned(),
        };
        self.warm_pool
            .ready
            .get_or_create(&label)
            .set(i64::try_from(ready).unwrap_or(i64::MAX));
    }

    /// A create took a warm sandbox of `pool` made `age` ago.
    pub fn warm_pool_hit(&self, pool: &str, age: Duration) {
        let labels = TakeLabels {
            pool: pool.to_owned(),
            outcome: "hit",
        };
        self.warm_pool.takes.get_or_create(&labels).inc();
        let label = PoolLabel {
            pool: pool.to_owned(),
        };
        self.warm_pool
            .age
            .get_or_create(&label)
            .observe(age.as_secs_f64());
    }

    /// A create asked `pool` and found no warm sandbox that fits (or taking it failed).
    pub fn warm_pool_miss(&self, pool: &str) {
        let labels = TakeLabels {
            pool: pool.to_owned(),
            outcome: "miss",
        };
        self.warm_pool.takes.get_or_create(&labels).inc();
    }

    /// A warm sandbox of `pool` was replaced for passing its maximum age.
    pub fn warm_pool_expired(&self, pool: &str) {
        let label = PoolLabel {
            pool: pool.to_owned(),
        };
        self.warm_pool.expired.get_or_create(&label).inc();
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// The store took an event that was made at `made`.
    pub(crate) fn event_persisted(&self, kind: EventKind, made: Instant) {
        if let Some(at) = EventKind::ALL.iter().position(|k| *k == kind) {
            self.events_by_kind[at].inc();
        }
        self.persist_latency.observe(made.elapsed().as_secs_f64());
    }

    /// An event made at `made` was sent over `transport`: queued on the sockets of its
    /// Socket.IO room, or handed to one SSE stream.
    pub fn event_sent(&self, transport: SentOver, made: Instant) {
        let histogram = match transport {
            SentOver::SocketIo => &self.sent_over_socketio,
            SentOver::Sse => &self.sent_over_sse,
        };
        histogram.observe(made.elapsed().as_secs_f64());
    }

    /// The writer asked the store to take `events` events at once.
    pub(crate) fn writer_batch(&self, events: usize) {
        self.batch_events.observe(events as f64);
    }

    /// The writer's queue holds `depth` requests.
    pub(crate) fn writer_queue(&self, depth: usize) {
        self.queue_depth.set(depth as i64);
    }

    /// A session held by this process has `status` now (`None`: no longer held), where it
    /// had `was` (`None`: it was not held).
    pub(crate) fn session_status(
        &self,
        profile: &str,
        was: Option<SessionStatus>,
        status: Option<SessionStatus>,
    ) {
        let labels = |status: SessionStatus| SessionLabels {
            status: status.as_str(),
            profile: profile.to_owned(),
        };
        if let Some(was) = was {
            self.sessions.get_or_create(&labels(was)).dec();
        }
        if let Some(status) = status {
            self.sessions.get_or_create(&labels(status)).inc();
        }
    }

    /// A session came up; `timings` says how long each phase took.
    pub(crate) fn session_started(&self, timings: &crate::runtime::StartTimings) {
        for (phase, took) in timings.phases() {
            let labels = PhaseLabels {
                phase,
                provider: self.sandbox_provider,
            };
            (self.session_start.get_or_create(&labels)).observe(took.as_secs_f64());
        }
    }

    /// A session was deleted.
    pub fn session_deleted(&self) {
        self.sessions_deleted.inc();
    }

    /// A session of `profile` used `more` since it was last counted.
    pub(crate) fn usage(&self, profile: &str, more: &Usage) {
        let tokens = |direction| TokenLabels {
            profile: profile.to_owned(),
            direction,
        };
        (self.tokens.get_or_create(&tokens("input"))).inc_by(more.input_tokens);
        (self.tokens.get_or_create(&tokens("output"))).inc_by(more.output_tokens);
        let profile = ProfileLabel {
            profile: profile.to_owned(),
        };
        if more.cost_usd > 0.0 {
            self.cost.get_or_create(&profile).inc_by(more.cost_usd);
        }
        self.turns.get_or_create(&profile).inc_by(more.turns);
    }

    /// A request for a person (a `permission` or `question`) started waiting for an
    /// answer; [`Metrics::approval_settled`] follows once it is answered, withdrawn or
    /// its session ends.
    pub fn approval_pending(&self) {
        self.approvals_pending.inc();
    }

    /// A pending request was answered, withdrawn, or ended with its session.
    pub fn approval_settled(&self) {
        self.approvals_pending.dec();
    }

    /// A Socket.IO socket connected.
    pub fn socket_connected(&self) {
        self.socketio_connections.inc();
    }

    /// A Socket.IO socket disconnected.
    pub fn socket_disconnected(&self) {
        self.socketio_connections.dec();
    }

    /// An SSE stream opened; it counts until the returned guard is dropped.
    pub fn sse_stream(&self) -> SseStream {
        self.sse_streams.inc();
        SseStream(self.sse_streams.clone())
    }

    /// A client missed a live event: its socket's buffer was full. (An SSE stream that
    /// falls behind re-reads the log and misses nothing.)
    pub fn live_event_missed(&self) {
        self.live_events_missed.inc();
    }

    /// An HTTP response went out with `status`.
    pub fn http_response(&self, status: u16) {
        self.http_requests
            .get_or_create(&StatusCode { status })
            .inc();
    }
}

/// An open SSE stream, counted in `agent_runtime_sse_streams` while it lives.
#[derive(Debug)]
pub struct SseStream(Gauge);

impl Drop for SseStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Which family a measuring adapter records into.
#[derive(Clone, Copy)]
enum Calls {
    Store,
    Storage,
}

/// Times one call of a measured adapter and counts its failure.
async fn measured<T>(
    metrics: &Metrics,
    calls: Calls,
    adapter: &'static str,
    operation: &'static str,
    call: impl Future<Output = AdapterResult<T>>,
) -> AdapterResult<T> {
    let started = Instant::now();
    let result = call.await;
    record(
        metrics,
        calls,
        adapter,
        operation,
        started.elapsed(),
        result.is_err(),
    );
    result
}

fn record(
    metrics: &Metrics,
    calls: Calls,
    adapter: &'static str,
    operation: &'static str,
    took: Duration,
    failed: bool,
) {
    let (histograms, errors) = match calls {
        Calls::Store => (&metrics.store_calls, &metrics.store_errors),
        Calls::Storage => (&metrics.storage_calls, &metrics.storage_errors),
    };
    let labels = CallLabels { adapter, operation };
    histograms
        .get_or_create(&labels)
        .observe(took.as_secs_f64());
    if failed {
        errors.get_or_create(&labels).inc();
    }
}

/// Every operation of [`SessionStore`], by the name its metrics carry.
const STORE_OPERATIONS: [&str; 13] = [
    "create",
    "get",
    "update",
    "list",
    "delete",
    "append_events",
    "append_batch",
    "events_after",
    "ping",
    "create_key",
    "key_by_hash",
    "list_keys",
    "revoke_key",
];

/// Every operation of [`BlobStore`], by the name its metrics carry.
const STORAGE_OPERATIONS: [&str; 6] = ["put", "get", "list", "delete", "delete_prefix", "ping"];

/// Makes the error counters of an adapter's operations exist at 0, so that an error
/// rate is defined before the first error and a dashboard finds the series.
fn declare_errors(
    errors: &Family<CallLabels, Counter>,
    adapter: &'static str,
    operations: &[&'static str],
) {
    for &operation in operations {
        drop(errors.get_or_create(&CallLabels { adapter, operation }));
    }
}

/// An adapter that times every call of the adapter it wraps and counts its failures
/// under the adapter's kind; what the calls do and answer is the wrapped adapter's.
pub struct Measured<A: ?Sized> {
    inner: Arc<A>,
    calls: Calls,
    adapter: &'static str,
    metrics: Arc<Metrics>,
}

/// A measured [`SessionStore`].
pub type MeasuredStore = Measured<dyn SessionStore>;
/// A measured [`BlobStore`].
pub type MeasuredBlobs = Measured<dyn BlobStore>;

impl<A: ?Sized> Measured<A> {
    /// Times `call` of `operation` (`Trait::method`), which is about `about` (a key and
    /// its value, e.g. the session id) where there is one; its error names both.
    async fn time<T>(
        &self,
        operation: &'static str,
        about: Option<(&'static str, &str)>,
        call: impl Future<Output = AdapterResult<T>>,
    ) -> AdapterResult<T> {
        measured(
            &self.metrics,
            self.calls,
            self.adapter,
            method(operation),
            call,
        )
        .await
        .map_err(|error| in_context(error, operation, about))
    }
}

/// The method of `Trait::method`: the name an operation's metrics carry.
fn method(operation: &'static str) -> &'static str {
    operation
        .rsplit_once("::")
        .map_or(operation, |(_, method)| method)
}

/// Names the failed call and what it was about: the one place a store's or storage's
/// error gets its operation, so every log line of it says which call failed.
fn in_context(
    error: AdapterError,
    operation: &'static str,
    about: Option<(&'static str, &str)>,
) -> AdapterError {
    let error = error.with_operation(operation);
    match about {
        Some((key, value)) => error.with_context(key, value),
        None => error,
    }
}

impl MeasuredStore {
    /// Wraps `inner`, whose kind (`sqlite`, `postgres`, `convex`, `memory`) is `adapter`.
    pub fn wrap(
        inner: Arc<dyn SessionStore>,
        adapter: &'static str,
        metrics: Arc<Metrics>,
    ) -> Arc<dyn SessionStore> {
        declare_errors(&metrics.store_errors, adapter, &STORE_OPERATIONS);
        Arc::new(Self {
            inner,
            calls: Calls::Store,
            adapter,
            metrics,
        })
    }
}

#[async_trait]
impl SessionStore for MeasuredStore {
    async fn create(&self, record: &SessionRecord) -> AdapterResult<()> {
        self.time(
            "SessionStore::create",
            Some(("session", &record.id)),
            self.inner.create(record),
        )
        .await
    }
    async fn get(&self, id: &str) -> AdapterResult<Option<SessionRecord>> {
        self.time(
            "SessionStore::get",
            Some(("session", id)),
            self.inner.get(id),
        )
        .await
    }
    async fn update(&self, record: &SessionRecord) -> AdapterResult<u64> {
        self.time(
            "SessionStore::update",
            Some(("session", &record.id)),
            self.inner.update(record),
        )
        .await
    }
    async fn list(
        &self,
        filter: &SessionFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> AdapterResult<SessionPage> {
        self.time(
            "SessionStore::list",
            None,
            self.inner.list(filter, limit, cursor),
        )
        .await
    }
    async fn delete(&self, id: &str) -> AdapterResult<()> {
        self.time(
            "SessionStore::delete",
            Some(("session", id)),
            self.inner.delete(id),
        )
        .await
    }
    async fn append_events(&self, id: &str, events: &[Event]) -> AdapterResult<()> {
        self.time(
            "SessionStore::append_events",
            Some(("session", id)),
            self.inner.append_events(id, events),
        )
        .await
    }
    async fn append_batch(&self, batch: &[SessionEvents<'_>]) -> Vec<AdapterResult<()>> {
        let started = Instant::now();
        let outcomes = self.inner.append_batch(batch).await;
        // One failing session fails the call as the dashboard sees it; which sessions the
        // writer retries is its own business.
        let failed = outcomes.len() < batch.len() || outcomes.iter().any(Result::is_err);
        record(
            &self.metrics,
            Calls::Store,
            self.adapter,
            "append_batch",
            started.elapsed(),
            failed,
        );
        outcomes
            .into_iter()
            .zip(batch)
            .map(|(outcome, entry)| {
                outcome.map_err(|error| {
                    let about = Some(("session", entry.session_id));
                    in_context(error, "SessionStore::append_batch", about)
                })
            })
            .collect()
    }
    async fn events_after(&self, id: &str, after: u64, limit: usize) -> AdapterResult<Vec<Event>> {
        self.time(
            "SessionStore::events_after",
            Some(("session", id)),
            self.inner.events_after(id, after, limit),
        )
        .await
    }
    async fn ping(&self) -> AdapterResult<()> {
        self.time("SessionStore::ping", None, self.inner.ping())
            .await
    }
    async fn create_key(&self, key: &ApiKeyRecord) -> AdapterResult<()> {
        self.time(
            "SessionStore::create_key",
            Some(("api_key", &key.name)),
            self.inner.create_key(key),
        )
        .await
    }
    async fn key_by_hash(&self, key_hash: &str) -> AdapterResult<Option<ApiKeyRecord>> {
        self.time(
            "SessionStore::key_by_hash",
            None,
            self.inner.key_by_hash(key_hash),
        )
        .await
    }
    async fn list_keys(&self) -> AdapterResult<Vec<ApiKeyRecord>> {
        self.time("SessionStore::list_keys", None, self.inner.list_keys())
            .await
    }
    async fn revoke_key(&self, name: &str) -> AdapterResult<bool> {
        self.time(
            "SessionStore::revoke_key",
            Some(("api_key", name)),
            self.inner.revoke_key(name),
        )
        .await
    }
}

impl MeasuredBlobs {
    /// Wraps `inner`, whose kind (`filesystem`, `s3`, `convex`, `memory`) is `adapter`.
    pub fn wrap(
        inner: Arc<dyn BlobStore>,
        adapter: &'static str,
        metrics: Arc<Metrics>,
    ) -> Arc<dyn BlobStore> {
        declare_errors(&metrics.storage_errors, adapter, &STORAGE_OPERATIONS);
        Arc::new(Self {
            inner,
            calls: Calls::Storage,
            adapter,
            metrics,
        })
    }
}

#[async_trait]
impl BlobStore for MeasuredBlobs {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> AdapterResult<()> {
        self.time(
            "BlobStore::put",
            Some(("key", key.as_str())),
            self.inner.put(key, bytes),
        )
        .await
    }
    async fn get(&self, key: &BlobKey) -> AdapterResult<Option<Bytes>> {
        self.time(
            "BlobStore::get",
            Some(("key", key.as_str())),
            self.inner.get(key),
        )
        .await
    }
    async fn list(&self, prefix: &BlobKey) -> AdapterResult<Vec<BlobMeta>> {
        self.time(
            "BlobStore::list",
            Some(("key", prefix.as_str())),
            self.inner.list(prefix),
        )
        .await
    }
    async fn delete(&self, key: &BlobKey) -> AdapterResult<()> {
        self.time(
            "BlobStore::delete",
            Some(("key", key.as_str())),
            self.inner.delete(key),
        )
        .await
    }
    async fn delete_prefix(&self, prefix: &BlobKey) -> AdapterResult<()> {
        self.time(
            "BlobStore::delete_prefix",
            Some(("key", prefix.as_str())),
            self.inner.delete_prefix(prefix),
        )
        .await
    }
    async fn ping(&self) -> AdapterResult<()> {
        self.time("BlobStore::ping", None, self.inner.ping()).await
    }
}

#[cfg(test)]
mod tests {
    use agent_runtime_api::{contract, memory};

    use super::*;

    /// The number a sample line of `text` says, by its exact name and labels.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    /// A failed call's error names the operation and what it was about, so the runtime's
    /// log line of it says which call failed and why.
    #[tokio::test]
    async fn a_failed_call_is_logged_with_its_operation() {
        let store = MeasuredStore::wrap(
            Arc::new(memory::MemorySessionStore::new()),
            "memory",
            Arc::new(Metrics::new("local")),
        );
        let missing = contract::sample_record("s-gone", "alice");
        let error = store.update(&missing).await.unwrap_err();
        assert_eq!(error.operation(), Some("SessionStore::update"));
        assert_eq!(error.context().collect::<Vec<_>>(), [("session", "s-gone")]);

        let lines = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let writer = {
            let lines = lines.clone();
            move || LogLines(lines.clone())
        };
        let subscriber = tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            crate::error::RuntimeError::storage("saving the session", error)
        });
        let logged = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
        assert!(
            logged.contains(
                "saving the session error=SessionStore::update: not found: session s-gone \
                 (session=s-gone)"
            ),
            "{logged}"
        );
    }

    /// Collects what a test's subscriber writes.
    struct LogLines(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for LogLines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    agent_runtime_api::session_store_contract!(measured_store, async {
        MeasuredStore::wrap(
            Arc::new(memory::MemorySessionStore::new()),
            "memory",
            Arc::new(Metrics::new("local")),
        )
    });

    agent_runtime_api::blob_store_contract!(measured_blobs, async {
        MeasuredBlobs::wrap(
            Arc::new(memory::MemoryBlobStore::new()),
            "memory",
            Arc::new(Metrics::new("local")),
        )
    });

    /// Every operation of both wrappers is timed and has its error counter, once the
    /// whole contract suites have run through them.
    #[tokio::test]
    async fn measured_adapters_count_every_call() {
        let metrics = Arc::new(Metrics::new("local"));
        let store = MeasuredStore::wrap(
            Arc::new(memory::MemorySessionStore::new()),
            "memory",
            metrics.clone(),
        );
        contract::session_store(store.as_ref()).await;
        let blobs = MeasuredBlobs::wrap(
            Arc::new(memory::MemoryBlobStore::new()),
            "memory",
            metrics.clone(),
        );
        contract::blob_store(blobs.as_ref()).await;

        let text = metrics.render();
        for (family, operations) in [
            ("store", &STORE_OPERATIONS[..]),
            ("storage", &STORAGE_OPERATIONS[..]),
        ] {
            for operation in operations {
                let labels = format!("{{adapter=\"memory\",operation=\"{operation}\"}}");
                let calls = sample(
                    &text,
                    &format!("agent_runtime_{family}_call_seconds_count{labels}"),
                );
                assert!(calls >= Some(1.0), "{family} {operation} is timed:\n{text}");
                let errors = sample(
                    &text,
                    &format!("agent_runtime_{family}_errors_total{labels}"),
                );
                assert!(
                    errors.is_some(),
                    "{family} {operation} errors are declared:\n{text}"
                );
            }
        }
    }

    #[test]
    fn renders_the_prometheus_text_format() {
        let metrics = Metrics::new("modal");
        metrics.http_response(200);
        metrics.http_response(404);
        metrics.http_response(200);
        metrics.socket_connected();
        metrics.socket_connected();
        metrics.socket_disconnected();
        let stream = metrics.sse_stream();
        metrics.session_deleted();
        metrics.event_persisted(EventKind::Agent, Instant::now());
        metrics.session_status("coder", None, Some(SessionStatus::Starting));
        metrics.session_status(
            "coder",
            Some(SessionStatus::Starting),
            Some(SessionStatus::Idle),
        );
        metrics.usage(
            "coder",
            &Usage {
                input_tokens: 12,
                output_tokens: 3,
                cost_usd: 0.25,
                turns: 1,
            },
        );
        metrics.session_started(&crate::runtime::StartTimings {
            sandbox: Duration::from_millis(1500),
            ..Default::default()
        });
        let text = metrics.render();
        for (series, value) in [
            ("agent_runtime_http_requests_total{status=\"200\"}", 2.0),
            ("agent_runtime_http_requests_total{status=\"404\"}", 1.0),
            ("agent_runtime_socketio_connections", 1.0),
            ("agent_runtime_sse_streams", 1.0),
            ("agent_runtime_sessions_deleted_total", 1.0),
            ("agent_runtime_events_appended_total{type=\"agent\"}", 1.0),
            ("agent_runtime_event_persist_latency_seconds_count", 1.0),
            (
                "agent_runtime_sessions{status=\"idle\",profile=\"coder\"}",
                1.0,
            ),
            (
                "agent_runtime_sessions{status=\"starting\",profile=\"coder\"}",
                0.0,
            ),
            (
                "agent_runtime_tokens_total{profile=\"coder\",direction=\"input\"}",
                12.0,
            ),
            ("agent_runtime_cost_usd_total{profile=\"coder\"}", 0.25),
            (
                "agent_runtime_session_start_seconds_sum{phase=\"sandbox\",provider=\"modal\"}",
                1.5,
            ),
            ("agent_runtime_approvals_pending", 0.0),
        ] {
            assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
        }
        assert!(
            text.contains("# TYPE agent_runtime_http_requests_total counter\n"),
            "{text}"
        );
        drop(stream);
        assert_eq!(
            sample(&metrics.render(), "agent_runtime_sse_streams"),
            Some(0.0)
        );
    }
}
