//! Counters the transports can observe honestly, rendered in the Prometheus text format.
//!
//! Event counters come from the transport's own bus subscription, so they count what
//! this process published since it started; events the subscription skipped after
//! falling behind are counted apart, not guessed.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use agent_runtime_api::EventKind;

const KINDS: [EventKind; 8] = EventKind::ALL;

/// The transports' metrics. Shared by every handler; all updates are lock-free except
/// the per-status HTTP table, whose std `Mutex` is held only to bump one entry.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Events seen on the bus, indexed like `KINDS`.
    events: [AtomicU64; KINDS.len()],
    /// `DomainEvent::Deleted` seen on the bus.
    sessions_deleted: AtomicU64,
    /// Live events a client missed because it fell behind.
    live_events_missed: AtomicU64,
    /// Socket.IO sockets connected right now.
    socket_connections: AtomicI64,
    /// HTTP responses by status code (Socket.IO traffic excluded).
    http_requests: Mutex<BTreeMap<u16, u64>>,
    /// Per start phase (prepare, sandbox, agent): total microseconds.
    start_micros: [AtomicU64; 3],
    sessions_started: AtomicU64,
}

impl Metrics {
    /// Counts one appended event.
    pub fn event_appended(&self, kind: EventKind) {
        if let Some(i) = KINDS.iter().position(|k| *k == kind) {
            self.events[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one deleted session.
    pub fn session_started(&self, timings: &crate::runtime::StartTimings) {
        for (total, (_, took)) in self.start_micros.iter().zip(timings.phases()) {
            total.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        }
        self.sessions_started.fetch_add(1, Ordering::Relaxed);
    }

    pub fn session_deleted(&self) {
        self.sessions_deleted.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a live event a client missed: its socket's buffer was full. (An SSE stream
    /// that falls behind re-reads the log and misses nothing.)
    pub fn live_event_missed(&self) {
        self.live_events_missed.fetch_add(1, Ordering::Relaxed);
    }

    /// A socket connected.
    pub fn socket_connected(&self) {
        self.socket_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// A socket disconnected.
    pub fn socket_disconnected(&self) {
        self.socket_connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts one HTTP response.
    pub fn http_response(&self, status: u16) {
        // A poisoned lock only means another thread panicked mid-increment; the map is
        // still a valid map, so keep counting.
        let mut table = self
            .http_requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *table.entry(status).or_default() += 1;
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        header(
            &mut out,
            "agent_runtime_events_appended_total",
            "counter",
            "Events appended to session logs since start, by type.",
        );
        for (kind, count) in KINDS.iter().zip(&self.events) {
            let n = count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "agent_runtime_events_appended_total{{type=\"{}\"}} {n}",
                kind.as_str()
            );
        }
        header(
            &mut out,
            "agent_runtime_session_start_seconds",
            "summary",
            "Time to bring sessions up (create and resume), by phase.",
        );
        let started = self.sessions_started.load(Ordering::Relaxed);
        let phases = crate::runtime::StartTimings::default().phases();
        for (total, (phase, _)) in self.start_micros.iter().zip(phases) {
            let seconds = total.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "agent_runtime_session_start_seconds_sum{{phase=\"{phase}\"}} {seconds}"
            );
            let _ = writeln!(
                out,
                "agent_runtime_session_start_seconds_count{{phase=\"{phase}\"}} {started}"
            );
        }
        single(
            &mut out,
            "agent_runtime_sessions_deleted_total",
            "counter",
            "Sessions deleted since start.",
            self.sessions_deleted.load(Ordering::Relaxed),
        );
        single(
            &mut out,
            "agent_runtime_live_events_missed_total",
            "counter",
            "Live events a Socket.IO client missed because its buffer was full (it fills the gap from the log).",
            self.live_events_missed.load(Ordering::Relaxed),
        );
        single(
            &mut out,
            "agent_runtime_socketio_connections",
            "gauge",
            "Socket.IO connections open now.",
            self.socket_connections.load(Ordering::Relaxed),
        );
        self.render_http(&mut out);
        out
    }

    fn render_http(&self, out: &mut String) {
        header(
            out,
            "agent_runtime_http_requests_total",
            "counter",
            "HTTP requests answered since start, by status code.",
        );
        let table = self
            .http_requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (status, n) in table.iter() {
            let _ = writeln!(
                out,
                "agent_runtime_http_requests_total{{status=\"{status}\"}} {n}"
            );
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        metrics.event_appended(EventKind::Agent);
        metrics.event_appended(EventKind::Agent);
        metrics.session_deleted();
        metrics.socket_connected();
        metrics.socket_connected();
        metrics.socket_disconnected();
        metrics.http_response(200);
        metrics.http_response(404);
        metrics.http_response(200);
        let text = metrics.render();
        for line in [
            "# TYPE agent_runtime_events_appended_total counter",
            "agent_runtime_events_appended_total{type=\"agent\"} 2",
            "agent_runtime_events_appended_total{type=\"status\"} 0",
            "agent_runtime_sessions_deleted_total 1",
            "agent_runtime_socketio_connections 1",
            "agent_runtime_http_requests_total{status=\"200\"} 2",
            "agent_runtime_http_requests_total{status=\"404\"} 1",
            "agent_runtime_live_events_missed_total 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
