//! gRPC services without generated stubs: path dispatch and the unary / server-streaming
//! glue around `tonic::server::Grpc` and the shared prost messages.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use agent_runtime_modal::proto::rpc;
use tokio::sync::mpsc;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::server::NamedService;

use super::state::State;
use super::{rpc_control, rpc_router};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// What a streaming handler returns: the messages, or a failure, in order.
pub(super) type Messages<R> = mpsc::Receiver<Result<R, Status>>;

/// `modal.client.ModalClient`.
#[derive(Clone)]
pub(super) struct ControlService(pub Arc<State>);

/// `modal.task_command_router.TaskCommandRouter`.
#[derive(Clone)]
pub(super) struct RouterService(pub Arc<State>);

impl NamedService for ControlService {
    const NAME: &'static str = rpc::CONTROL_SERVICE;
}

impl NamedService for RouterService {
    const NAME: &'static str = rpc::ROUTER_SERVICE;
}

macro_rules! dispatching_service {
    ($service:ty, $dispatch:path) => {
        impl tonic::codegen::Service<http::Request<Body>> for $service {
            type Response = http::Response<Body>;
            type Error = Infallible;
            type Future = BoxFuture<Result<Self::Response, Infallible>>;

            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }

            fn call(&mut self, request: http::Request<Body>) -> Self::Future {
                let state = Arc::clone(&self.0);
                Box::pin(async move {
                    let method = request
                        .uri()
                        .path()
                        .rsplit('/')
                        .next()
                        .unwrap_or("")
                        .to_owned();
                    Ok($dispatch(state, &method, request).await)
                })
            }
        }
    };
}

dispatching_service!(ControlService, rpc_control::dispatch);
dispatching_service!(RouterService, rpc_router::dispatch);

/// Decodes a `Q`, runs `handler`, encodes its `R` or its status.
pub(super) async fn unary<Q, R, F, Fut>(
    request: http::Request<Body>,
    handler: F,
) -> http::Response<Body>
where
    Q: prost::Message + Default + Send + 'static,
    R: prost::Message + Send + 'static,
    F: FnOnce(tonic::Request<Q>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<R, Status>> + Send + 'static,
{
    let mut handler = Some(handler);
    let service = tower::service_fn(move |request: tonic::Request<Q>| {
        let handler = handler.take();
        async move {
            match handler {
                Some(handler) => handler(request).await.map(tonic::Response::new),
                None => Err(Status::internal("fake Modal: handler called twice")),
            }
        }
    });
    let codec = tonic_prost::ProstCodec::<R, Q>::default();
    tonic::server::Grpc::new(codec)
        .unary(service, request)
        .await
}

/// Decodes a `Q`, runs `handler`, streams the messages it produces.
pub(super) async fn streaming<Q, R, F, Fut>(
    request: http::Request<Body>,
    handler: F,
) -> http::Response<Body>
where
    Q: prost::Message + Default + Send + 'static,
    R: prost::Message + Send + 'static,
    F: FnOnce(tonic::Request<Q>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Messages<R>, Status>> + Send + 'static,
{
    let mut handler = Some(handler);
    let service = tower::service_fn(move |request: tonic::Request<Q>| {
        let handler = handler.take();
        async move {
            match handler {
                Some(handler) => {
                    let messages = handler(request).await?;
                    Ok(tonic::Response::new(ReceiverStream::new(messages)))
                }
                None => Err(Status::internal("fake Modal: handler called twice")),
            }
        }
    });
    let codec = tonic_prost::ProstCodec::<R, Q>::default();
    tonic::server::Grpc::new(codec)
        .server_streaming(service, request)
        .await
}

/// The answer to a method the fake does not implement.
pub(super) fn unimplemented(method: &str) -> http::Response<Body> {
    Status::unimplemented(format!("fake Modal does not implement {method}")).into_http()
}
