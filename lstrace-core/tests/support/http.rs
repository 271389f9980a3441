//! Services on 127.0.0.1 for the HTTP integrations' tests, and what they tell back.
#![allow(dead_code)] // Each test binary uses its own subset.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::routing::get;
use axum::Router;
use lstrace_core::http::{TraceLayer, TracedRequestBuilder};
use lstrace_core::propagation::{Format, PropagatorStack};
use lstrace_core::testing::TestRecorder;
use lstrace_core::{span, SpanContext, SpanRecord, TraceId};
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Serves `app` on 127.0.0.1 until the test's runtime shuts down.
pub(crate) async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The request's headers, one `name: value` line each, sorted.
pub(crate) async fn echo(headers: HeaderMap) -> String {
    let mut lines: Vec<String> = headers
        .iter()
        .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or("<binary>")))
        .collect();
    lines.sort();
    lines.concat()
}

/// A service whose `/echo` answers with the request's headers.
pub(crate) async fn echo_service() -> SocketAddr {
    serve(Router::new().route("/echo", get(echo))).await
}

/// A service traced by `layer` whose `/call` opens a `prepare` span, then calls
/// `downstream`'s `/echo` with the reqwest integration and answers with what it echoed.
pub(crate) async fn calling_service(downstream: SocketAddr, layer: TraceLayer) -> SocketAddr {
    async fn call(State(downstream): State<SocketAddr>) -> String {
        drop(span("prepare").start());
        reqwest::Client::new()
            .get(format!("http://{downstream}/echo"))
            .send_traced_for_text()
            .await
    }
    serve(
        Router::new()
            .route("/call", get(call))
            .layer(layer)
            .with_state(downstream),
    )
    .await
}

/// Calls `service`'s `/call` as a caller in `caller`'s context would, with that context in
/// the headers of `format`, and returns the answer's body.
pub(crate) async fn call_as(caller: &SpanContext, format: Format, service: SocketAddr) -> String {
    let mut headers = HeaderMap::new();
    PropagatorStack::empty()
        .with(format)
        .inject(caller, &mut headers);
    reqwest::Client::new()
        .get(format!("http://{service}/call"))
        .headers(headers)
        .send_for_text()
        .await
}

/// The value of header `name` in what [`echo`] answered.
pub(crate) fn header<'a>(echoed: &'a str, name: &str) -> Option<&'a str> {
    echoed
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
}

/// What [`echo`] answered, as headers again.
pub(crate) fn echoed_headers(echoed: &str) -> HeaderMap {
    echoed
        .lines()
        .filter_map(|line| line.split_once(": "))
        .map(|(k, v)| {
            (
                k.parse::<HeaderName>().unwrap(),
                v.parse::<HeaderValue>().unwrap(),
            )
        })
        .collect()
}

/// Sends a request and reads its answer's body, failing the test on any error.
pub(crate) trait SendForText {
    /// Sends the request as it is.
    fn send_for_text(self) -> impl Future<Output = String> + Send;
    /// Sends the request with the reqwest integration (a client span, the context in its
    /// headers).
    fn send_traced_for_text(self) -> impl Future<Output = String> + Send;
}

impl SendForText for reqwest::RequestBuilder {
    async fn send_for_text(self) -> String {
        self.send().await.unwrap().text().await.unwrap()
    }

    async fn send_traced_for_text(self) -> String {
        self.send_traced().await.unwrap().text().await.unwrap()
    }
}

/// The spans of `trace`, waiting (within a generous bound) until `count` have finished.
pub(crate) fn trace_spans(trace: TraceId, count: usize) -> Vec<SpanRecord> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let spans = TestRecorder::install().trace(trace);
        if spans.len() >= count || Instant::now() > deadline {
            return spans;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
