//! gRPC plumbing without generated stubs: channels, calls, retries and error mapping.

use std::future::Future;
use std::time::Duration;

use agent_runtime_api::AdapterError;
use backon::{BackoffBuilder, ExponentialBuilder};
use prost::Message;
use tokio::time::Instant;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status, Streaming};

use crate::proto;

/// Largest message accepted or sent, as Modal's own clients configure it.
const MAX_MESSAGE_BYTES: usize = 100 * 1024 * 1024;
/// HTTP/2 flow-control window, as Modal's own clients configure it.
const WINDOW_BYTES: u32 = 64 * 1024 * 1024;

/// Control-plane calls: 3 attempts, 100 ms doubling to 1 s (Modal's clients do the same).
pub(crate) const CONTROL_RETRY: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(100))
    .with_max_delay(Duration::from_secs(1))
    .with_max_times(2);

/// Command-router calls: 10 retries from 10 ms, doubling to 3 s (Modal's clients do the
/// same).
pub(crate) const ROUTER_RETRY: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(10))
    .with_max_delay(Duration::from_secs(3))
    .with_max_times(10);

/// Whether a call that failed with `code` may succeed when tried again.
pub(crate) fn is_transient(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Internal
            | Code::Unknown
    )
}

/// How one kind of call is retried.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryRules {
    /// Delays between attempts that failed with a transient status; retrying stops when
    /// they run out.
    pub backoff: ExponentialBuilder,
    /// When set, no attempt starts later than this after the first one.
    pub patience: Option<Duration>,
    /// The most time spent in all waits a server asked for with an `RPCRetryPolicy`
    /// (`RESOURCE_EXHAUSTED` and the like); zero fails such calls at once.
    pub max_throttle_wait: Duration,
}

/// What an attempt knows about the attempts before it, for the `x-retry-*` headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt {
    /// 0 for the first attempt, then 1, 2, … (throttled attempts not counted, as Modal's
    /// clients count them).
    pub retry: u32,
    /// When the first attempt started.
    pub first_at: Instant,
}

/// Runs `attempt` until it succeeds, fails with a status that is neither transient nor
/// carries a server retry delay, or the rules' retries, patience or throttle budget are
/// used up. A server's delay is honoured whatever the status code, as Modal's clients do.
pub(crate) async fn with_retry<T, F, Fut>(
    rules: RetryRules,
    what: &str,
    mut attempt: F,
) -> Result<T, Status>
where
    F: FnMut(Attempt) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let first_at = Instant::now();
    let mut delays = rules.backoff.build();
    let mut throttled = Duration::ZERO;
    let mut retry = 0;
    loop {
        let status = match attempt(Attempt { retry, first_at }).await {
            Ok(value) => return Ok(value),
            Err(status) => status,
        };
        let delay = if let Some(wait) = server_retry_delay(&status) {
            if throttled + wait > rules.max_throttle_wait {
                tracing::debug!(
                    rpc = what,
                    ?wait,
                    "throttled beyond max_throttle_wait; giving up"
                );
                return Err(status);
            }
            throttled += wait;
            tracing::debug!(rpc = what, code = ?status.code(), grpc_message = status.message(),
                ?wait, "throttled by the server; retrying after the delay it asked for");
            wait
        } else if is_transient(status.code()) {
            let Some(delay) = delays.next() else {
                return Err(status);
            };
            retry += 1;
            tracing::debug!(rpc = what, code = ?status.code(), grpc_message = status.message(),
                ?delay, "transient gRPC failure; retrying");
            delay
        } else {
            return Err(status);
        };
        if rules
            .patience
            .is_some_and(|patience| first_at.elapsed() + delay > patience)
        {
            return Err(status);
        }
        tokio::time::sleep(delay).await;
    }
}

/// The delay a failed call's `RPCRetryPolicy` detail asks for (at least 100 ms, as Modal's
/// clients read it), if it carries one.
pub(crate) fn server_retry_delay(status: &Status) -> Option<Duration> {
    if status.details().is_empty() {
        return None;
    }
    let details = proto::RpcStatus::decode(status.details()).ok()?;
    // Modal's clients take the first policy; more than one is not expected.
    let policy = details
        .details
        .iter()
        .find(|any| any.type_url.rsplit('/').next() == Some(proto::RPC_RETRY_POLICY_TYPE))?;
    let policy = proto::RpcRetryPolicy::decode(policy.value.as_slice()).ok()?;
    let secs = if policy.retry_after_secs.is_finite() {
        policy.retry_after_secs.clamp(0.1, 86_400.0)
    } else {
        0.1
    };
    Some(Duration::from_secs_f32(secs))
}

/// A lazily connecting channel to `url`: TLS with public roots for `https://`, plain HTTP/2
/// for `http://` (test servers). Needs a Tokio runtime.
pub(crate) fn channel(url: &str) -> Result<Channel, AdapterError> {
    endpoint(url).map(|endpoint| endpoint.connect_lazy())
}

/// Checks `url` and prepares its endpoint, without connecting.
pub(crate) fn endpoint(url: &str) -> Result<Endpoint, AdapterError> {
    let invalid = |why: String| AdapterError::invalid_input(format!("Modal URL {url:?}: {why}"));
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|error| invalid(error.to_string()))?
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
        .initial_stream_window_size(WINDOW_BYTES)
        .initial_connection_window_size(WINDOW_BYTES);
    if url.starts_with("https://") {
        let tls = ClientTlsConfig::new().with_webpki_roots();
        endpoint
            .tls_config(tls)
            .map_err(|error| invalid(error.to_string()))
    } else if url.starts_with("http://") {
        Ok(endpoint)
    } else {
        Err(invalid(
            "must start with https:// (or http:// for a test server)".into(),
        ))
    }
}

async fn ready(channel: &Channel) -> Result<tonic::client::Grpc<Channel>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    grpc.ready()
        .await
        .map_err(|error| Status::unavailable(format!("connecting: {error}")))?;
    Ok(grpc)
}

/// One unary call.
pub(crate) async fn unary<Q, R>(
    channel: &Channel,
    path: &'static str,
    request: tonic::Request<Q>,
) -> Result<R, Status>
where
    Q: prost::Message + Send + Sync + 'static,
    R: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = ready(channel).await?;
    let codec = tonic_prost::ProstCodec::<Q, R>::default();
    let response = grpc
        .unary(request, PathAndQuery::from_static(path), codec)
        .await?;
    Ok(response.into_inner())
}

/// Opens one server-streaming call.
pub(crate) async fn server_streaming<Q, R>(
    channel: &Channel,
    path: &'static str,
    request: tonic::Request<Q>,
) -> Result<Streaming<R>, Status>
where
    Q: prost::Message + Send + Sync + 'static,
    R: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = ready(channel).await?;
    let codec = tonic_prost::ProstCodec::<Q, R>::default();
    let response = grpc
        .server_streaming(request, PathAndQuery::from_static(path), codec)
        .await?;
    Ok(response.into_inner())
}

/// Sets a metadata entry, refusing values that cannot be HTTP header values.
pub(crate) fn set_header<T>(
    request: &mut tonic::Request<T>,
    name: &'static str,
    value: &str,
) -> Result<(), Status> {
    let value = value
        .parse()
        .map_err(|_| Status::invalid_argument(format!("{name} is not a valid header value")))?;
    request.metadata_mut().insert(name, value);
    Ok(())
}

/// Translates a final gRPC failure into the adapter's error, naming what was being done
/// and the status code (as its name, e.g. `ResourceExhausted`, the context `code`); the
/// status is its source (its code's description, message and transport error).
pub(crate) fn adapter_error(what: &str, status: &Status) -> AdapterError {
    let message = format!("Modal {what}");
    let error = match status.code() {
        Code::NotFound => AdapterError::not_found(message),
        Code::AlreadyExists | Code::Aborted => AdapterError::conflict(message),
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
            AdapterError::invalid_input(message)
        }
        Code::Unauthenticated | Code::PermissionDenied => {
            AdapterError::other(format!("{message}; check the Modal token id and secret"))
        }
        code if is_transient(code) || code == Code::ResourceExhausted => {
            AdapterError::unavailable(message)
        }
        _ => AdapterError::other(message),
    };
    error
        .with_context("code", format_args!("{:?}", status.code()))
        .with_source(status.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_run_out() {
        let millis = |policy: ExponentialBuilder| -> Vec<u128> {
            // backon multiplies in f32: a delay may be off by a nanosecond.
            let millis = |delay: Duration| (delay.as_secs_f64() * 1000.0).round() as u128;
            policy.build().map(millis).collect()
        };
        assert_eq!(millis(CONTROL_RETRY), [100, 200]);
        let router = millis(ROUTER_RETRY);
        assert_eq!(router.len(), 10);
        assert_eq!(router[..3], [10, 20, 40]);
        assert_eq!(router[9], 3000);
    }

    #[test]
    fn maps_codes_to_adapter_errors() {
        let not_found = adapter_error("open", &Status::not_found("gone"));
        assert_eq!(not_found.kind(), agent_runtime_api::ErrorKind::NotFound);
        assert!(not_found.to_string().contains("gone"), "{not_found}");
        let source = std::error::Error::source(&not_found).expect("the status is the source");
        assert!(source.downcast_ref::<Status>().is_some());
        assert!(adapter_error("x", &Status::unavailable("")).is_transient());
        assert!(!adapter_error("x", &Status::unauthenticated("")).is_transient());
    }

    #[test]
    fn reads_the_servers_retry_delay_from_the_status_details() {
        let status = |type_url: &str, secs: f32| {
            let policy = proto::RpcRetryPolicy {
                retry_after_secs: secs,
            };
            let details = proto::RpcStatus {
                code: Code::ResourceExhausted as i32,
                message: "slow down".into(),
                details: vec![proto::Any {
                    type_url: type_url.into(),
                    value: policy.encode_to_vec(),
                }],
            };
            Status::with_details(
                Code::ResourceExhausted,
                "slow down",
                details.encode_to_vec().into(),
            )
        };
        let delay = |s: &Status| server_retry_delay(s).map(|d| d.as_millis());
        let modal = "type.modal.com/modal.client.RPCRetryPolicy";
        let google = "type.googleapis.com/modal.client.RPCRetryPolicy";
        assert_eq!(delay(&status(modal, 2.5)), Some(2500));
        assert_eq!(delay(&status(google, 2.5)), Some(2500));
        assert_eq!(delay(&status(modal, 0.0)), Some(100), "at least 100 ms");
        assert_eq!(delay(&status(modal, f32::NAN)), Some(100));
        assert_eq!(
            delay(&status("type.modal.com/modal.client.Other", 2.0)),
            None
        );
        assert_eq!(delay(&Status::resource_exhausted("no details")), None);
        let garbage = Status::with_details(Code::ResourceExhausted, "x", vec![0xff, 0xff].into());
        assert_eq!(delay(&garbage), None);
    }

    #[test]
    fn refuses_urls_without_a_known_scheme() {
        assert!(endpoint("ftp://example.com").is_err());
        assert!(endpoint("http://127.0.0.1:1").is_ok());
    }
}
