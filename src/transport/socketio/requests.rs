//! One handler per request event of the protocol's Socket.IO table.

use socketioxide::extract::SocketRef;

use super::{Reply, Request, ok, on, on_in_order};
use crate::runtime::MAX_EVENT_PAGE;
use crate::transport::wire::{
    self, AnswerBody, EmptyBody, EventsBody, FilesBody, MessageBody, ProfilesBody, SessionBody,
    SessionsBody, WireSession,
};
use crate::transport::{payload, room};

/// Registers every request event on a freshly connected socket.
pub(super) fn register(socket: &SocketRef) {
    on(socket, "session:create", create);
    on_in_order(socket, "session:message", message);
    on(socket, "session:join", join);
    on(socket, "session:leave", leave);
    on(socket, "session:answer", answer);
    on(socket, "session:budget", set_budget);
    on(socket, "session:interrupt", interrupt);
    on(socket, "session:stop", stop);
    on(socket, "session:resume", resume);
    on(socket, "session:fork", fork);
    on(socket, "session:delete", delete);
    on(socket, "session:get", get);
    on(socket, "session:list", list);
    on(socket, "session:files", files);
    on(socket, "profile:list", profiles);
}

/// Creates a session; the socket is in its room when the ack arrives.
///
/// When the client proposes no id, one is generated here and the socket joins the room
/// *before* the session starts, so the creator sees every event from seq 1 (including
/// those of a first message). A client-proposed id is joined only after the create
/// succeeded: that id might belong to another principal's session, whose events must not
/// reach this socket while the create is being refused.
async fn create(request: Request) -> Reply {
    let mut create = payload::create(&request.payload)?;
    let early_room = match create.session_id {
        Some(_) => None,
        None => {
            let id = uuid::Uuid::now_v7().to_string();
            let early = room(&id);
            request.socket.join(early.clone());
            create.session_id = Some(id);
            Some(early)
        }
    };
    match request.ctx.manager.create(&request.principal, create).await {
        Ok(record) => {
            if early_room.is_none() {
                request.socket.join(room(&record.id));
            }
            ok(SessionBody::new(
                &record,
                &request.ctx.manager.pending(&record.id),
            ))
        }
        Err(error) => {
            if let Some(early) = early_room {
                request.socket.leave(early);
            }
            Err(error)
        }
    }
}

async fn message(request: Request) -> Reply {
    let message = payload::send_message(&request.payload)?;
    let accepted = request
        .ctx
        .manager
        .send_message(
            &request.principal,
            &message.session_id,
            message.content,
            message.message_id,
        )
        .await?;
    ok(MessageBody {
        message_id: &accepted.message_id,
        seq: accepted.seq,
    })
}

/// Joins the room first, then reads the log, so no event falls in between; the client
/// drops events it already has by `seq`.
async fn join(request: Request) -> Reply {
    let join = payload::join(&request.payload)?;
    let manager = &request.ctx.manager;
    // Checks ownership before the socket may hear anything of the session.
    let record = manager.get(&request.principal, &join.session_id).await?;
    let pending = manager.pending(&record.id);
    let session_room = room(&join.session_id);
    request.socket.join(session_room.clone());
    let Some(after) = join.after else {
        return ok(EventsBody {
            session: Some(WireSession::new(&record, &pending)),
            events: Vec::new(),
            has_more: false,
        });
    };
    let page = match manager
        .events(&request.principal, &join.session_id, after, MAX_EVENT_PAGE)
        .await
    {
        Ok(page) => page,
        Err(error) => {
            request.socket.leave(session_room);
            return Err(error);
        }
    };
    ok(EventsBody {
        session: Some(WireSession::new(&record, &pending)),
        events: wire::envelopes(&join.session_id, &page.events)?,
        has_more: page.has_more,
    })
}

async fn leave(request: Request) -> Reply {
    let session_id = payload::session_id(&request.payload)?;
    request.socket.leave(room(&session_id));
    ok(EmptyBody {})
}

/// Answers a pending `permission` or `question` request of the session's agent.
async fn answer(request: Request) -> Reply {
    let answer = payload::answer(&request.payload)?;
    let seq = request
        .ctx
        .manager
        .answer(
            &request.principal,
            &answer.session_id,
            &answer.request_id,
            answer.answer,
        )
        .await?;
    ok(AnswerBody { seq })
}

/// Sets a session's budget (admins only).
async fn set_budget(request: Request) -> Reply {
    let (session_id, budget) = payload::set_budget(&request.payload)?;
    let manager = &request.ctx.manager;
    let record = manager
        .set_budget(&request.principal, &session_id, budget)
        .await?;
    ok(SessionBody::new(&record, &manager.pending(&record.id)))
}

async fn interrupt(request: Request) -> Reply {
    let session_id = payload::session_id(&request.payload)?;
    request
        .ctx
        .manager
        .interrupt(&request.principal, &session_id)
        .await?;
    ok(EmptyBody {})
}

async fn stop(request: Request) -> Reply {
    let session_id = payload::session_id(&request.payload)?;
    let record = request
        .ctx
        .manager
        .stop(&request.principal, &session_id)
        .await?;
    ok(SessionBody::new(
        &record,
        &request.ctx.manager.pending(&record.id),
    ))
}

async fn resume(request: Request) -> Reply {
    let session_id = payload::session_id(&request.payload)?;
    let record = request
        .ctx
        .manager
        .resume(&request.principal, &session_id)
        .await?;
    ok(SessionBody::new(
        &record,
        &request.ctx.manager.pending(&record.id),
    ))
}

/// Forks a session; the socket is in the fork's room when the ack arrives. As for
/// `session:create`, the fork's id is chosen here and the room joined before it starts,
/// so the socket sees every event of the fork from seq 1.
async fn fork(request: Request) -> Reply {
    let session_id = payload::session_id(&request.payload)?;
    let id = uuid::Uuid::now_v7().to_string();
    let early = room(&id);
    request.socket.join(early.clone());
    let forked = request
        .ctx
        .manager
        .fork(&request.principal, &session_id, Some(id))
        .await;
    match forked {
        Ok(record) => ok(SessionBody::new(
            &record,
            &request.ctx.manager.pending(&record.id),
        )),
        Err(error) => {
            request.socket.leave(early);
            Err(error)
        }
    }
}

/// Deletes a session; the fan-out task empties its room when the bus reports it.
async fn delete(request: Request) -> Reply {
    let session_id = payload::session_id(&request.payload)?;
    request
        .ctx
        .manager
        .delete(&request.principal, &session_id)
        .await?;
    ok(EmptyBody {})
}

async fn get(request: Request) -> Reply {
    let session_id = payload::session_id(&request.payload)?;
    let record = request
        .ctx
        .manager
        .get(&request.principal, &session_id)
        .await?;
    ok(SessionBody::new(
        &record,
        &request.ctx.manager.pending(&record.id),
    ))
}

async fn list(request: Request) -> Reply {
    let filter = payload::list(&request.payload)?;
    let page = request.ctx.manager.list(&request.principal, filter).await?;
    ok(SessionsBody {
        sessions: wire::sessions(&page.sessions, |id| request.ctx.manager.pending(id)),
        next_cursor: page.next_cursor.as_deref(),
    })
}

async fn files(request: Request) -> Reply {
    let session_id = payload::session_id(&request.payload)?;
    let files = request
        .ctx
        .manager
        .files(&request.principal, &session_id)
        .await?;
    ok(FilesBody {
        files: wire::files(&files),
    })
}

async fn profiles(request: Request) -> Reply {
    payload::optional_object(&request.payload)?;
    let profiles = request.ctx.manager.profiles().await?;
    ok(ProfilesBody {
        profiles: wire::profiles(&profiles),
    })
}
