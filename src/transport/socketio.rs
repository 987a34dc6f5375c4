//! Socket.IO: the handshake, the request events of the protocol, and the live fan-out of
//! events to session rooms.
//!
//! Every request is answered the same way: with an ack `{ ok: true, ... }` or
//! `{ ok: false, error }` when the client asked for one, else (errors only) with an
//! `error` event `{ event, error }` on the socket.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::handler::{ConnectHandler, FromMessageParts};
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::Socket;
use tokio::sync::broadcast::{self, error::RecvError};

use super::error::{SocketError, error_ack, error_object};
use super::{REVALIDATE_EVERY, Shared, bearer_token, room, wire};
use crate::auth::Principal;
use crate::error::RuntimeError;
use crate::metrics::{Metrics, SentOver};
use crate::runtime::{DomainEvent, LiveSink, Published};

mod requests;

/// Packets buffered per Socket.IO connection.
const SOCKET_BUFFER_PACKETS: usize = 4096;

/// The Socket.IO layer for the router, and the handle used to broadcast and to close.
pub(crate) fn layer(ctx: Shared, max_payload: usize) -> (SocketIoLayer, SocketIo) {
    let (layer, io) = SocketIo::builder()
        .with_state(ctx)
        // Polling payloads and websocket messages get the same limit.
        .max_payload(u64::try_from(max_payload).unwrap_or(u64::MAX))
        // Packets queued per connection before an emit to it fails. The default (128)
        // drops live events for a client that reads a fast stream a little late.
        .max_buffer_size(SOCKET_BUFFER_PACKETS)
        .ws_max_message_size(max_payload)
        .build_layer();
    io.ns("/", on_connect.with(authenticate));
    (layer, io)
}

/// The handshake's rejection; its text is what the client's `connect_error` carries.
#[derive(Debug)]
struct Unauthorized;

impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unauthorized")
    }
}

/// The token a socket connected with, kept to authenticate its requests again: a key
/// revoked or a JWT expired after the handshake stops working on open sockets too.
#[derive(Clone)]
struct Credential(Option<agent_runtime_api::Secret>);

impl Credential {
    fn token(&self) -> Option<&str> {
        self.0.as_ref().map(|secret| secret.expose())
    }
}

/// Connect middleware: a token from `auth.token`, else from `Authorization: Bearer`.
async fn authenticate(
    socket: SocketRef,
    TryData(auth): TryData<Value>,
    State(ctx): State<Shared>,
) -> Result<(), Unauthorized> {
    let from_auth = auth
        .ok()
        .and_then(|auth| auth.get("token")?.as_str().map(str::to_owned));
    let token = from_auth.or_else(|| bearer_token(&socket.req_parts().headers).map(str::to_owned));
    match ctx.auth.authenticate(token.as_deref()).await {
        Ok(principal) => {
            socket.extensions.insert(principal);
            socket
                .extensions
                .insert(Credential(token.map(agent_runtime_api::Secret::new)));
            tokio::spawn(revalidate(socket.clone(), ctx.clone()));
            // Here, not in the connect handler: socketioxide awaits this middleware before
            // it sends the CONNECT packet, but runs an async connect handler as a task of
            // its own after it, so a client that emits at once could reach a socket whose
            // request handlers are not registered yet.
            ctx.metrics.socket_connected();
            let metrics = ctx.metrics.clone();
            socket.on_disconnect(async move || metrics.socket_disconnected());
            requests::register(&socket);
            Ok(())
        }
        Err(error) => {
            tracing::debug!(sid = %socket.id, %error, "Socket.IO handshake rejected");
            Err(Unauthorized)
        }
    }
}

/// Everything a socket needs is set up by [`authenticate`], before the client hears it is
/// connected.
async fn on_connect() {}

/// A request as a handler sees it.
pub(crate) struct Request {
    /// The socket it came on.
    pub(crate) socket: SocketRef,
    /// The shared state.
    pub(crate) ctx: Shared,
    /// Who sent it.
    pub(crate) principal: Principal,
    /// The payload; null when the client sent none.
    pub(crate) payload: Value,
}

/// What a handler answers: the serialized success ack, or the error.
pub(crate) type Reply = Result<Box<RawValue>, RuntimeError>;

/// Whether the client asked for an ack; [`AckSender`] does not tell.
struct AckRequested(bool);

impl<A: Adapter> FromMessageParts<A> for AckRequested {
    type Error = Infallible;

    fn from_message_parts(
        _: &Arc<Socket<A>>,
        _: &mut socketioxide::handler::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        Ok(Self(ack_id.is_some()))
    }
}

/// Registers `handle` for `event`, with the protocol's ack and error conventions.
pub(crate) fn on<F, Fut>(socket: &SocketRef, event: &'static str, handle: F)
where
    F: Fn(Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    register(socket, event, None, handle);
}

/// Like [`on`], but the socket's requests of this event are handled one at a time, in the
/// order they arrived. socketioxide runs each event's handler as a task of its own, so
/// two messages sent back to back could otherwise reach their session in either order.
pub(crate) fn on_in_order<F, Fut>(socket: &SocketRef, event: &'static str, handle: F)
where
    F: Fn(Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    register(socket, event, Some(Arc::new(InOrder::default())), handle);
}

fn register<F, Fut>(socket: &SocketRef, event: &'static str, order: Option<Arc<InOrder>>, handle: F)
where
    F: Fn(Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    socket.on(
        event,
        move |socket: SocketRef,
              TryData(payload): TryData<Value>,
              AckRequested(asked): AckRequested,
              ack: AckSender,
              State(ctx): State<Shared>| {
            let handle = handle.clone();
            // Taken here, synchronously: socketioxide calls this closure in the order the
            // packets arrived, before it spawns the returned future.
            let turn = order.as_ref().map(|order| order.ticket());
            async move {
                let _turn = match turn {
                    Some(turn) => Some(turn.wait().await),
                    None => None,
                };
                let reply = match current_principal(&socket, &ctx).await {
                    Err(error) => {
                        respond(&socket, event, asked, ack, Err(error));
                        let _ = socket.disconnect();
                        return;
                    }
                    Ok(principal) => {
                        // No payload at all decodes as an error; treat it as null so that
                        // `profile:list` works without one and the rest say "not an object".
                        let payload = payload.unwrap_or(Value::Null);
                        let request = Request {
                            socket: socket.clone(),
                            ctx,
                            principal,
                            payload,
                        };
                        handle(request).await
                    }
                };
                respond(&socket, event, asked, ack, reply);
            }
        },
    );
}

/// The socket's principal, with its token checked again (from the authenticator's cache
/// when it has one; see [`crate::auth::check_again`]). The principal stays the one of the
/// handshake.
async fn current_principal(socket: &SocketRef, ctx: &Shared) -> Result<Principal, RuntimeError> {
    // Unreachable without both: the handshake stores them before any event.
    let (Some(principal), Some(credential)) = (
        socket.extensions.get::<Principal>(),
        socket.extensions.get::<Credential>(),
    ) else {
        return Err(crate::auth::unauthorized(false));
    };
    crate::auth::check_again(&*ctx.auth, credential.token(), &principal).await?;
    Ok(principal)
}

/// Checks the socket's token every [`REVALIDATE_EVERY`] while it is connected; a token
/// that stopped being valid disconnects it.
async fn revalidate(socket: SocketRef, ctx: Shared) {
    loop {
        tokio::time::sleep(REVALIDATE_EVERY).await;
        if !socket.connected() {
            return;
        }
        if current_principal(&socket, &ctx).await.is_err() {
            tracing::info!(sid = %socket.id, "token no longer valid; disconnecting the socket");
            let _ = socket.disconnect();
            return;
        }
    }
}

/// Hands out turns in the order requests arrived; a turn ends when its guard drops.
#[derive(Debug, Default)]
struct InOrder {
    issued: std::sync::atomic::AtomicU64,
    done: tokio::sync::watch::Sender<u64>,
}

impl InOrder {
    fn ticket(self: &Arc<Self>) -> Ticket {
        let number = self
            .issued
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ticket {
            order: self.clone(),
            number,
        }
    }
}

/// A place in the line.
struct Ticket {
    order: Arc<InOrder>,
    number: u64,
}

impl Ticket {
    /// Waits until every earlier ticket's request was handled.
    async fn wait(self) -> TurnGuard {
        let mut done = self.order.done.subscribe();
        // The sender lives in `self.order`, so the channel cannot close while we wait.
        let _ = done.wait_for(|finished| *finished == self.number).await;
        TurnGuard(self.order)
    }
}

/// Lets the next request go when dropped, also if the handler panicked.
struct TurnGuard(Arc<InOrder>);

impl Drop for TurnGuard {
    fn drop(&mut self) {
        self.0.done.send_modify(|finished| *finished += 1);
    }
}

fn respond(socket: &SocketRef, event: &str, asked: bool, ack: AckSender, reply: Reply) {
    let sent = match (&reply, asked) {
        (Ok(body), true) => ack.send(&**body),
        (Err(error), true) => ack.send(&error_ack(error)),
        (Ok(_), false) => Ok(()),
        (Err(error), false) => {
            let body = SocketError {
                error: error_object(error),
                event,
            };
            socket.emit("error", &body)
        }
    };
    if let Err(error) = sent {
        tracing::debug!(sid = %socket.id, event, %error, "could not answer a Socket.IO request");
    }
}

/// `{ ok: true, ...body }`: a successful Socket.IO ack.
// Serialized once, then sent as is.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "{T}Ack")]
pub(crate) struct Ack<T> {
    /// Always `true`.
    #[schemars(schema_with = "super::schema::always_true")]
    ok: bool,
    #[serde(flatten)]
    body: T,
}

/// A success ack with these fields.
pub(crate) fn ok<T: Serialize>(body: T) -> Reply {
    serde_json::value::to_raw_value(&Ack { ok: true, body })
        .map_err(|e| RuntimeError::internal("serializing an ack", e))
}

/// The live fan-out to Socket.IO rooms: the bus's sink, called by the event writer for
/// every persisted event.
///
/// Each envelope is rendered once (and shared with the session's SSE streams) and sent to
/// every socket in `session:{id}`. A socket whose buffer is full misses the event live:
/// its client sees the gap in `seq` and fills it with `session:join { afterSeq }`.
pub(crate) struct Rooms {
    pub(crate) io: SocketIo,
    pub(crate) metrics: Arc<Metrics>,
}

#[agent_runtime_api::async_trait]
impl LiveSink for Rooms {
    async fn appended(&self, published: &Published) {
        let event = published.event();
        // Already logged by `RuntimeError::internal`; the log still has the event.
        let Some(envelope) = published.rendered(wire::rendered_envelope) else {
            return;
        };
        let session_id = published.session_id();
        // No namespace once the server closed (`to` would panic): nobody is left to hear.
        let Some(namespace) = self.io.of("/") else {
            return;
        };
        let sent = namespace
            .to(room(session_id))
            .emit("session:event", envelope)
            .await;
        self.metrics
            .event_sent(SentOver::SocketIo, published.made());
        if let Err(error) = sent {
            self.metrics.live_event_missed();
            tracing::warn!(%session_id, seq = event.seq, %error, "a client's buffer is full: broadcast incomplete");
        }
    }
}

/// Follows session lifecycle news until the bus closes: counts deletes, and empties a
/// deleted session's room.
pub(crate) async fn follow_lifecycle(
    io: SocketIo,
    mut bus: broadcast::Receiver<DomainEvent>,
    metrics: Arc<Metrics>,
) {
    loop {
        match bus.recv().await {
            Ok(DomainEvent::Started { .. }) => {}
            Ok(DomainEvent::Deleted { session_id }) => {
                metrics.session_deleted();
                let room = room(&session_id);
                if let Err(error) = io.to(room.clone()).leave(room).await {
                    tracing::warn!(%session_id, %error, "could not empty a deleted session's room");
                }
            }
            Err(RecvError::Lagged(skipped)) => {
                tracing::warn!(skipped, "missed news of session starts and deletes");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::wire::{EmptyBody, EventsBody};

    #[test]
    fn acks_are_flat_and_keep_event_data_verbatim() {
        let event = RawValue::from_string(r#"{"seq":1,"data":{"n":1.50}}"#.into()).unwrap();
        let body = EventsBody {
            session: None,
            events: vec![event],
            has_more: false,
        };
        assert_eq!(
            ok(body).unwrap().get(),
            r#"{"ok":true,"events":[{"seq":1,"data":{"n":1.50}}],"hasMore":false}"#
        );
        assert_eq!(ok(EmptyBody {}).unwrap().get(), r#"{"ok":true}"#);
    }

    #[test]
    fn handshake_rejection_text() {
        assert_eq!(Unauthorized.to_string(), "unauthorized");
    }
}
