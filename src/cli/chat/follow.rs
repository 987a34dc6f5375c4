//! Follows a session's events over SSE, across reconnects: every event once, in seq
//! order. A reconnect resumes with `Last-Event-ID` (the last seq delivered); a gap, should
//! one ever show, is filled from `GET …/events?after=` before the event after it.

use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use reqwest::header::ACCEPT;
use serde_json::Value;
use sse_stream::SseStream;
use tokio::sync::{mpsc, watch};

use super::client::{ApiError, Client, read};

/// The runtime sends a comment every 15 s; a stream silent for this long is dead.
const SILENCE: Duration = Duration::from_secs(45);
/// The first wait before a reconnect; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What the follower tells the chat.
#[derive(Debug)]
pub enum Feed {
    /// The next event (an envelope), seq one past the last.
    Event(Value),
    /// The stream broke; reconnecting.
    Lost(String),
    /// Connected again after [`Feed::Lost`].
    Back,
    /// The session cannot be followed any more (deleted, or the token refused).
    Gone(String),
}

/// Follows session `id` from after seq `after`, in a task, until the receiver is dropped.
pub fn spawn(client: Client, id: String, after: u64) -> mpsc::UnboundedReceiver<Feed> {
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(follow(client, id, after, sender));
    receiver
}

async fn follow(client: Client, id: String, mut last: u64, feed: mpsc::UnboundedSender<Feed>) {
    let mut backoff = FIRST_BACKOFF;
    let mut lost = false;
    loop {
        let reason = match open(&client, &id, last).await {
            Ok(response) => {
                if lost {
                    lost = false;
                    if feed.send(Feed::Back).is_err() {
                        return;
                    }
                }
                backoff = FIRST_BACKOFF;
                match stream(&client, &id, &mut last, response, &feed).await {
                    Ok(reason) => reason,
                    Err(Closed) => return,
                }
            }
            Err(ApiError::Api {
                status: 401 | 403 | 404,
                code,
                message,
            }) => {
                let _ = feed.send(Feed::Gone(format!("{code}: {message}")));
                return;
            }
            Err(error) => error.to_string(),
        };
        if feed.is_closed() {
            return;
        }
        if !lost {
            lost = true;
            if feed.send(Feed::Lost(reason)).is_err() {
                return;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The chat went away.
struct Closed;

/// Opens the SSE stream after seq `last`.
async fn open(client: &Client, id: &str, last: u64) -> Result<reqwest::Response, ApiError> {
    let url = client.url(&["v1", "sessions", id, "events"]);
    let response = client
        .request(Method::GET, url)
        .header(ACCEPT, "text/event-stream")
        .header("last-event-id", last.to_string())
        .send()
        .await
        .map_err(|e| client.unreachable(&e))?;
    if response.status().is_success() {
        Ok(response)
    } else {
        match read(response).await {
            Err(error) => Err(error),
            Ok(_) => Err(ApiError::Unreachable("an error without a body".to_owned())),
        }
    }
}

/// Delivers the stream's events until it ends; returns why it ended.
async fn stream(
    client: &Client,
    id: &str,
    last: &mut u64,
    response: reqwest::Response,
    feed: &mpsc::UnboundedSender<Feed>,
) -> Result<String, Closed> {
    // The keep-alive comments never come out of the parser as events, so silence is
    // measured on the bytes: any chunk, a comment included, shows the stream is alive.
    let (heard_tx, mut heard) = watch::channel(());
    let bytes = response.bytes_stream().inspect(move |_| {
        heard_tx.send_replace(());
    });
    let mut events = SseStream::from_bytes_stream(bytes);
    loop {
        let next = tokio::select! {
            next = events.next() => next,
            () = silence(&mut heard) => {
                return Ok(format!("nothing heard for {}s", SILENCE.as_secs()));
            }
        };
        let next = match next {
            None => return Ok("the stream ended".to_owned()),
            Some(Err(error)) => return Ok(error.to_string()),
            Some(Ok(next)) => next,
        };
        let Some(data) = next.data else {
            continue;
        };
        let Ok(envelope) = serde_json::from_str::<Value>(&data) else {
            continue;
        };
        let Some(seq) = envelope["seq"].as_u64() else {
            continue;
        };
        if seq <= *last {
            continue;
        }
        if seq > *last + 1 {
            fill_gap(client, id, last, seq, feed).await?;
        }
        if seq != *last + 1 {
            return Ok(format!("events {}..{} are missing", *last + 1, seq - 1));
        }
        deliver(envelope, last, feed)?;
    }
}

/// Reads the log between `last` and `before` and delivers it.
async fn fill_gap(
    client: &Client,
    id: &str,
    last: &mut u64,
    before: u64,
    feed: &mpsc::UnboundedSender<Feed>,
) -> Result<(), Closed> {
    while *last + 1 < before {
        let Ok((events, more)) = client.events(id, *last).await else {
            return Ok(());
        };
        let mut progressed = false;
        for envelope in events {
            let seq = envelope["seq"].as_u64().unwrap_or_default();
            if seq == *last + 1 && seq < before {
                deliver(envelope, last, feed)?;
                progressed = true;
            }
        }
        if !more || !progressed {
            return Ok(());
        }
    }
    Ok(())
}

fn deliver(
    envelope: Value,
    last: &mut u64,
    feed: &mpsc::UnboundedSender<Feed>,
) -> Result<(), Closed> {
    *last = envelope["seq"].as_u64().unwrap_or(*last);
    feed.send(Feed::Event(envelope)).map_err(|_| Closed)
}

/// Ends once [`SILENCE`] passes with no bytes from the stream.
async fn silence(heard: &mut watch::Receiver<()>) {
    while let Ok(Ok(())) = tokio::time::timeout(SILENCE, heard.changed()).await {}
}
