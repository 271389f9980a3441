//! Server (entry) spans for tower services.

use super::{method_tag, operation_name, record_status};
use crate::propagation::{self, PropagatorStack};
use crate::sampling;
use crate::task::future::Instrumented;
use crate::{recorder, FutureExt, Span, SpanKind};
use ::http::{request, Request, Response};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

type OperationName = Arc<dyn Fn(&request::Parts) -> String + Send + Sync>;

/// A [`tower::Layer`](tower_layer::Layer) that runs every request of an HTTP service inside a
/// server (entry) span: axum routers, tonic servers, hyper services.
///
/// For each request it extracts the caller's context from the headers (with the
/// [`global_stack`](propagation::global_stack) unless [`TraceLayer::with_propagators`] says
/// otherwise) and starts a span as its child, or, without one, as a child of the current span
/// (normally none: a new trace). The span (`HTTP {method}` unless
/// [`TraceLayer::with_operation_name`] names it, `span.kind = server`, `http.method`,
/// `http.url` as received) is the current span of the handler's task, so spans started in
/// the handler nest under it, and calls made with the reqwest integration carry it on. It
/// finishes when the response is ready (tagged `http.status_code`; a 5xx or an error from the
/// service sets `error = true`), when the handler panics (`error = true`), or when the
/// request is dropped unanswered (`cancelled = true`).
///
/// A request without a caller's context starts a new trace, which the
/// [sampling policy](crate::sampling) records or not. A caller's "not sampled" decision is
/// kept (unless the policy ignores callers' decisions): nothing is recorded, and calls made
/// while handling the request pass the decision on. Without a tracer, the caller's context
/// passes through to the calls made while handling the request.
///
/// With other layers that open spans, such as tower-http's `TraceLayer` (whose `tracing`
/// spans the `tracing` bridge records), put this layer outside them (in axum, the later
/// `.layer(..)` call): it must read the caller's headers before their spans start, or those
/// spans start a trace of their own. The `tracing_bridge` example runs that stack.
///
/// ```
/// use lstrace_core::http::TraceLayer;
///
/// let app: axum::Router = axum::Router::new()
///     .route("/users/{id}", axum::routing::get(|| async { "ann" }))
///     .layer(TraceLayer::new().with_operation_name(|request| {
///         // Name spans by route, not by path: paths hold ids.
///         match request.extensions.get::<axum::extract::MatchedPath>() {
///             Some(route) => format!("{} {}", request.method, route.as_str()),
///             None => format!("{} (no route)", request.method),
///         }
///     }));
/// ```
#[derive(Clone, Default)]
pub struct TraceLayer {
    propagators: Option<Arc<PropagatorStack>>,
    operation_name: Option<OperationName>,
}

impl TraceLayer {
    /// A layer with the default operation names and the global propagation stack.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Extracts the caller's context with `stack` instead of the global stack.
    #[must_use]
    pub fn with_propagators(mut self, stack: PropagatorStack) -> Self {
        self.propagators = Some(Arc::new(stack));
        self
    }

    /// Names each request's span with `name` (given the request's method, URI, headers and
    /// extensions) instead of `HTTP {method}`.
    #[must_use]
    pub fn with_operation_name(
        mut self,
        name: impl Fn(&request::Parts) -> String + Send + Sync + 'static,
    ) -> Self {
        self.operation_name = Some(Arc::new(name));
        self
    }
}

impl fmt::Debug for TraceLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceLayer")
            .field("propagators", &self.propagators)
            .field("custom_operation_name", &self.operation_name.is_some())
            .finish()
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> TraceService<S> {
        TraceService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service that [`TraceLayer`] wraps around another.
#[derive(Clone, Debug)]
pub struct TraceService<S> {
    inner: S,
    layer: TraceLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for TraceService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: fmt::Display,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let parent = match &self.layer.propagators {
            Some(stack) => stack.extract(request.headers()),
            None => propagation::extract(request.headers()),
        };
        let enabled = recorder::is_enabled();
        if !enabled && parent.is_none() {
            return ResponseFuture::new(self.inner.call(request), Span::noop());
        }
        // Without a tracer the caller's context passes through; a caller's "not sampled"
        // needs no span either, unless the policy may record the request anyway.
        if let Some(parent) = parent
            .as_ref()
            .filter(|p| !enabled || (!p.is_sampled() && sampling::follows_parent()))
        {
            let inner = parent.in_scope(|| self.inner.call(request));
            return ResponseFuture {
                inner: Recorded {
                    inner,
                    recording: false,
                }
                .in_context(parent),
            };
        }
        let (parts, body) = request.into_parts();
        let name = match &self.layer.operation_name {
            Some(name) => name(&parts),
            None => operation_name(&parts.method),
        };
        let builder = crate::span(name)
            .kind(SpanKind::Server)
            .with_tag("http.method", method_tag(&parts.method))
            .with_tag("http.url", parts.uri.to_string());
        let builder = match &parent {
            Some(parent) => builder.child_of(parent),
            None => builder,
        };
        let mut span = builder.start_detached();
        let request = Request::from_parts(parts, body);
        // Services may do work in `call` itself (routing, say): it belongs to the span too.
        let inner = span.in_scope(|| self.inner.call(request));
        ResponseFuture::new(inner, span)
    }
}

/// The response future of [`TraceService`]: the inner service's, inside the request's span.
pub struct ResponseFuture<F> {
    inner: Instrumented<Recorded<F>>,
}

impl<F> ResponseFuture<F> {
    fn new(inner: F, span: Span) -> Self {
        let recording = !span.is_noop();
        ResponseFuture {
            inner: Instrumented::new(span, Recorded { inner, recording }),
        }
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    E: fmt::Display,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is pinned whenever `self` is: it is never moved out, and
        // `ResponseFuture` has no `Drop` impl and no manual `Unpin` impl.
        unsafe { self.map_unchecked_mut(|f| &mut f.inner) }.poll(cx)
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("inner", &self.inner)
            .finish()
    }
}

/// Tags the span (current while this is polled) with the outcome.
struct Recorded<F> {
    inner: F,
    recording: bool,
}

impl<F, ResBody, E> Future for Recorded<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    E: fmt::Display,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let recording = self.recording;
        // SAFETY: as for `ResponseFuture`: `inner` is never moved, no `Drop`, no `Unpin` impl.
        let inner = unsafe { self.map_unchecked_mut(|f| &mut f.inner) };
        let output = ready!(inner.poll(cx));
        if recording {
            match &output {
                Ok(response) => record_status(response.status()),
                Err(error) => crate::record_error(error),
            }
        }
        Poll::Ready(output)
    }
}
