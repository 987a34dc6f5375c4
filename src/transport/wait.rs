//! `wait: true` on `POST /v1/sessions/{id}/messages`: waiting for the turn's result.

use agent_runtime_api::{Event, EventKind};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::broadcast::{self, error::RecvError};

use super::Context;
use crate::auth::Principal;
use crate::error::{ErrorCode, RuntimeError};
use crate::runtime::{DomainEvent, MAX_EVENT_PAGE};

/// What one event means for the wait.
#[derive(Debug)]
enum Outcome {
    /// Not the end of the turn.
    Continue,
    /// The turn's `result` line: its data.
    Result(Box<RawValue>),
    /// The session ended before the turn did.
    Ended(RuntimeError),
}

/// Waits for the first agent `result` after `input_seq`, the seq of the message's
/// `input` event; fails if the session fails, stops or is deleted first.
///
/// `bus` must have been subscribed before the message was sent. Events already checked
/// are skipped by seq; a gap or a lagging subscription is filled from the log.
pub(crate) async fn turn_result(
    ctx: &Context,
    principal: &Principal,
    session_id: &str,
    mut bus: broadcast::Receiver<DomainEvent>,
    input_seq: u64,
) -> Result<Box<RawValue>, RuntimeError> {
    let mut checked = input_seq;
    loop {
        let received = tokio::select! {
            received = bus.recv() => received,
            () = ctx.shutting_down() => {
                return Err(RuntimeError::new(
                    ErrorCode::Internal,
                    "the runtime is shutting down; the turn's result is in the event log",
                ));
            }
        };
        let outcome = match received {
            Ok(DomainEvent::Appended {
                session_id: id,
                event,
            }) if *id == *session_id => {
                if event.seq <= checked {
                    continue;
                }
                if event.seq > checked + 1 {
                    scan_log(ctx, principal, session_id, &mut checked).await?
                } else {
                    checked = event.seq;
                    inspect(&event)
                }
            }
            Ok(DomainEvent::Deleted { session_id: id }) if *id == *session_id => {
                Outcome::Ended(RuntimeError::session_not_found(session_id))
            }
            Ok(_) => continue,
            Err(RecvError::Lagged(_)) => scan_log(ctx, principal, session_id, &mut checked).await?,
            Err(RecvError::Closed) => {
                return Err(RuntimeError::new(
                    ErrorCode::Internal,
                    "the runtime's event bus closed",
                ));
            }
        };
        match outcome {
            Outcome::Continue => {}
            Outcome::Result(data) => return Ok(data),
            Outcome::Ended(error) => return Err(error),
        }
    }
}

/// Reads the log after `checked` up to its end, looking for the outcome.
async fn scan_log(
    ctx: &Context,
    principal: &Principal,
    session_id: &str,
    checked: &mut u64,
) -> Result<Outcome, RuntimeError> {
    loop {
        let page = ctx
            .manager
            .events(principal, session_id, *checked, MAX_EVENT_PAGE)
            .await?;
        for event in &page.events {
            *checked = event.seq;
            let outcome = inspect(event);
            if !matches!(outcome, Outcome::Continue) {
                return Ok(outcome);
            }
        }
        if !page.has_more || page.events.is_empty() {
            return Ok(Outcome::Continue);
        }
    }
}

#[derive(Deserialize)]
struct Tagged {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct StatusData {
    status: Option<String>,
}

fn inspect(event: &Event) -> Outcome {
    match event.kind {
        // Only objects: serde would also read a struct from an array like `["result"]`.
        EventKind::Agent if !event.data.get().trim_start().starts_with('{') => Outcome::Continue,
        EventKind::Agent => match serde_json::from_str::<Tagged>(event.data.get()) {
            Ok(Tagged { kind: Some(kind) }) if kind == "result" => {
                Outcome::Result(event.data.clone())
            }
            _ => Outcome::Continue,
        },
        EventKind::Status => match serde_json::from_str::<StatusData>(event.data.get()) {
            Ok(StatusData {
                status: Some(status),
            }) if status == "failed" || status == "stopped" => Outcome::Ended(RuntimeError::new(
                ErrorCode::AgentFailed,
                format!("the session became {status} before the turn's result arrived"),
            )),
            _ => Outcome::Continue,
        },
        _ => Outcome::Continue,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn event(kind: EventKind, data: &str) -> Event {
        Event {
            seq: 5,
            at: Utc::now(),
            kind,
            data: RawValue::from_string(data.into()).unwrap(),
        }
    }

    #[test]
    fn result_lines_end_the_wait_verbatim() {
        let data = r#"{"type":"result","subtype":"success","total_cost_usd":0.10}"#;
        match inspect(&event(EventKind::Agent, data)) {
            Outcome::Result(raw) => assert_eq!(raw.get(), data),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_events_do_not() {
        for (kind, data) in [
            (EventKind::Agent, r#"{"type":"assistant"}"#),
            (EventKind::Agent, r#"[1]"#),
            (EventKind::Agent, r#"["result"]"#),
            (EventKind::Input, r#"{"type":"result"}"#),
            (EventKind::Status, r#"{"status":"idle"}"#),
            (EventKind::Error, r#"{"code":"sync_failed","fatal":false}"#),
        ] {
            assert!(
                matches!(inspect(&event(kind, data)), Outcome::Continue),
                "{data}"
            );
        }
    }

    #[test]
    fn failed_or_stopped_sessions_end_it_with_an_error() {
        for status in ["failed", "stopped"] {
            let data = format!(r#"{{"status":"{status}","reason":"x"}}"#);
            match inspect(&event(EventKind::Status, &data)) {
                Outcome::Ended(error) => {
                    assert_eq!(error.code, ErrorCode::AgentFailed);
                    assert!(error.message.contains(status));
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
