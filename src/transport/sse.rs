//! A session's event log over HTTP: JSON pages, a live Server-Sent Events stream, and
//! the whole log as NDJSON.
//!
//! SSE events carry `id: <seq>` and `data: <envelope>` and no `event:` line, so they
//! arrive as plain `message` events (`EventSource.onmessage`); the envelope's `type`
//! says what they are. Without `Last-Event-ID` or `?after=`, the stream replays the log
//! from the start; `?after=<lastSeq>` gives live events only.

use std::convert::Infallible;
use std::time::Duration;

use agent_runtime_api::Event;
use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::value::RawValue;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::REVALIDATE_EVERY;
use super::Shared;
use super::error::ApiError;
use super::rest::{PathParams, QueryParams};
use super::wire::{self, EventsBody};
use crate::auth::Principal;
use crate::error::RuntimeError;
use crate::metrics::SentOver;
use crate::runtime::{EventPage, Follower, MAX_EVENT_PAGE, Published};

/// How often an idle SSE stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `GET /v1/sessions/{id}/events`: SSE with `Accept: text/event-stream`, else
/// `{ events, hasMore }` for `?after=N&limit=M`.
pub(crate) async fn events(
    State(ctx): State<Shared>,
    Extension(principal): Extension<Principal>,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    query: QueryParams,
) -> Result<Response, ApiError> {
    if accepts_event_stream(&headers) {
        let after = match last_event_id(&headers)? {
            Some(seq) => seq,
            None => query.u64("after")?.unwrap_or(0),
        };
        let token = super::bearer_token(&headers).map(agent_runtime_api::Secret::new);
        return stream(ctx, principal, token, id, after).await;
    }
    let after = query.u64("after")?.unwrap_or(0);
    let limit = query.limit("limit")?.unwrap_or(MAX_EVENT_PAGE);
    let page = ctx.manager.events(&principal, &id, after, limit).await?;
    let body = EventsBody {
        session: None,
        events: wire::envelopes(&id, &page.events)?,
        has_more: page.has_more,
    };
    Ok(Json(body).into_response())
}

fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|media| media.split(';').next())
        .any(|media| media.trim().eq_ignore_ascii_case("text/event-stream"))
}

fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, RuntimeError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let parsed = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    parsed
        .map(Some)
        .ok_or_else(|| RuntimeError::invalid("`Last-Event-ID` must be a non-negative integer"))
}

/// Authorizes, follows the session's live events, then replays and follows the log in a
/// task.
async fn stream(
    ctx: Shared,
    principal: Principal,
    token: Option<agent_runtime_api::Secret>,
    session_id: String,
    after: u64,
) -> Result<Response, ApiError> {
    ctx.manager.get(&principal, &session_id).await?;
    let follower = ctx.manager.bus().follow(&session_id);
    let (sender, receiver) = mpsc::channel(64);
    // Counted while its feed runs, which ends when the client goes away.
    let open = ctx.metrics.sse_stream();
    let feed = Feed {
        ctx,
        principal,
        token,
        session_id,
        last: after,
        sender,
    };
    tokio::spawn(async move {
        feed.run(follower).await;
        drop(open);
    });
    let events = futures::stream::unfold(receiver, |mut receiver| async move {
        let event = receiver.recv().await?;
        Some((Ok::<_, Infallible>(event), receiver))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

/// The client went away, or the log cannot be read: the stream ends. A client that
/// reconnects with `Last-Event-ID` resumes where it stopped.
struct Stop;

/// One SSE client's feed: everything after `last`, in seq order, without repeats.
struct Feed {
    ctx: Shared,
    principal: Principal,
    /// The token the stream was opened with, checked again every [`REVALIDATE_EVERY`].
    token: Option<agent_runtime_api::Secret>,
    session_id: String,
    /// The seq of the last event sent (or skipped as unsendable).
    last: u64,
    sender: mpsc::Sender<SseEvent>,
}

impl Feed {
    async fn run(mut self, mut follower: Follower) {
        if self.replay().await.is_err() {
            return;
        }
        let start = tokio::time::Instant::now() + REVALIDATE_EVERY;
        let mut revalidate = tokio::time::interval_at(start, REVALIDATE_EVERY);
        loop {
            let received = tokio::select! {
                received = follower.recv() => received,
                () = self.ctx.shutting_down() => return,
                () = self.sender.closed() => return,
                _ = revalidate.tick() => {
                    if self.token_revoked().await {
                        return;
                    }
                    continue;
                }
            };
            let step = match received {
                Ok(published) => self.live(&published).await,
                Err(RecvError::Lagged(skipped)) => {
                    tracing::warn!(skipped, session_id = %self.session_id, "SSE stream lagged; re-reading the log");
                    self.replay().await
                }
                // The session was deleted.
                Err(RecvError::Closed) => return,
            };
            if step.is_err() {
                return;
            }
        }
    }

    /// Whether the stream's token stopped standing for its principal (a revoked key, an
    /// expired JWT); see [`crate::auth::check_again`].
    async fn token_revoked(&self) -> bool {
        let token = self.token.as_ref().map(|t| t.expose());
        crate::auth::check_again(&*self.ctx.auth, token, &self.principal)
            .await
            .is_err()
    }

    /// A live event: skipped if already sent; a gap before it is filled from the log.
    async fn live(&mut self, published: &Published) -> Result<(), Stop> {
        let seq = published.event().seq;
        if seq > self.last + 1 {
            self.replay().await?;
        }
        if seq <= self.last {
            return Ok(());
        }
        let envelope = published.rendered(wire::rendered_envelope);
        self.send(seq, envelope).await?;
        self.ctx.metrics.event_sent(SentOver::Sse, published.made());
        Ok(())
    }

    /// Sends the log after `last`, page by page, to its current end.
    async fn replay(&mut self) -> Result<(), Stop> {
        loop {
            let page = self
                .ctx
                .manager
                .events(&self.principal, &self.session_id, self.last, MAX_EVENT_PAGE)
                .await
                .map_err(|error| {
                    tracing::warn!(%error, session_id = %self.session_id, "SSE replay failed");
                    Stop
                })?;
            for event in &page.events {
                let envelope = wire::envelope(&self.session_id, event).ok();
                self.send(event.seq, envelope.as_deref()).await?;
            }
            if !page.has_more || page.events.is_empty() {
                return Ok(());
            }
        }
    }

    /// Sends an event's envelope; one that could not be serialized (`None`, logged) is
    /// skipped, not fatal.
    async fn send(&mut self, seq: u64, envelope: Option<&RawValue>) -> Result<(), Stop> {
        if let Some(envelope) = envelope {
            let sse = SseEvent::default().id(seq.to_string()).data(envelope.get());
            self.sender.send(sse).await.map_err(|_| Stop)?;
        }
        self.last = seq;
        Ok(())
    }
}

/// `GET /v1/sessions/{id}/transcript`: the whole log as NDJSON, one envelope per line.
///
/// The first page is read before answering, so a missing session is a proper 404; a
/// failure on a later page aborts the body, which the client sees as a broken transfer.
pub(crate) async fn transcript(
    State(ctx): State<Shared>,
    Extension(principal): Extension<Principal>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let first = ctx
        .manager
        .events(&principal, &id, 0, MAX_EVENT_PAGE)
        .await?;
    let pages = Pages {
        ctx,
        principal,
        session_id: id,
        pending: Some(first),
        after: 0,
        done: false,
    };
    let body = Body::from_stream(futures::stream::unfold(pages, Pages::next_chunk));
    Ok(([(CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

/// Pages through a session's log for the transcript.
struct Pages {
    ctx: Shared,
    principal: Principal,
    session_id: String,
    /// A page read but not yet written.
    pending: Option<EventPage>,
    /// The seq of the last event written.
    after: u64,
    done: bool,
}

impl Pages {
    async fn next_chunk(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        let page = match self.pending.take() {
            Some(page) => page,
            None if self.done => return None,
            None => {
                let read = self
                    .ctx
                    .manager
                    .events(
                        &self.principal,
                        &self.session_id,
                        self.after,
                        MAX_EVENT_PAGE,
                    )
                    .await;
                match read {
                    Ok(page) => page,
                    Err(error) => {
                        self.done = true;
                        return Some((Err(std::io::Error::other(error)), self));
                    }
                }
            }
        };
        self.done = !page.has_more || page.events.is_empty();
        let chunk = ndjson(&self.session_id, &page.events);
        if let Some(last) = page.events.last() {
            self.after = last.seq;
        }
        match chunk {
            Ok(chunk) => Some((Ok(chunk), self)),
            Err(error) => {
                self.done = true;
                Some((Err(std::io::Error::other(error)), self))
            }
        }
    }
}

/// Envelopes, one per line.
fn ndjson(session_id: &str, events: &[Event]) -> Result<Bytes, RuntimeError> {
    let mut out = Vec::new();
    for envelope in wire::envelopes(session_id, events)? {
        out.extend_from_slice(envelope.get().as_bytes());
        out.push(b'\n');
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use agent_runtime_api::EventKind;
    use axum::http::HeaderValue;
    use chrono::{TimeZone, Utc};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn event_stream_is_negotiated_from_accept() {
        assert!(accepts_event_stream(&headers(&[(
            "accept",
            "text/event-stream"
        )])));
        assert!(accepts_event_stream(&headers(&[(
            "accept",
            "application/json;q=0.5, Text/Event-Stream; q=1"
        )])));
        assert!(!accepts_event_stream(&headers(&[(
            "accept",
            "application/json"
        )])));
        assert!(!accepts_event_stream(&HeaderMap::new()));
    }

    #[test]
    fn last_event_id_must_be_a_seq() {
        assert_eq!(
            last_event_id(&headers(&[("last-event-id", "17")])).unwrap(),
            Some(17)
        );
        assert_eq!(last_event_id(&HeaderMap::new()).unwrap(), None);
        let error = last_event_id(&headers(&[("last-event-id", "x")])).unwrap_err();
        assert_eq!(
            error.message,
            "`Last-Event-ID` must be a non-negative integer"
        );
    }

    #[test]
    fn transcript_lines() {
        let at = Utc.timestamp_opt(1_767_225_600, 0).unwrap();
        let events: Vec<Event> = (1..=2)
            .map(|seq| Event {
                seq,
                at,
                kind: EventKind::Status,
                data: RawValue::from_string(r#"{"status":"idle"}"#.into()).unwrap(),
            })
            .collect();
        let text = ndjson("s", &events).unwrap();
        assert_eq!(
            std::str::from_utf8(&text).unwrap(),
            concat!(
                r#"{"sessionId":"s","seq":1,"at":"2026-01-01T00:00:00.000Z","type":"status","data":{"status":"idle"}}"#,
                "\n",
                r#"{"sessionId":"s","seq":2,"at":"2026-01-01T00:00:00.000Z","type":"status","data":{"status":"idle"}}"#,
                "\n"
            )
        );
    }
}
