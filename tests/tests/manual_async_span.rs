//! A manual span around async work, in a future that must be `Send` (an axum handler, a
//! `tokio::spawn`ed task): the pattern the README and `EnteredSpan`'s docs give.
#![deny(warnings, clippy::all, clippy::pedantic)]

use lstrace::testing::TestRecorder;
use lstrace::FutureExt as _;
use std::future::Future;
use tokio::task::yield_now;

/// What axum asks of a handler's future (and `tokio::spawn` of a task).
fn require_send<F: Future + Send + 'static>(future: F) -> F {
    future
}

#[lstrace::traced]
async fn resize(width: u32) -> u32 {
    yield_now().await;
    width / 2
}

/// A handler: one manual span with tags and a log, held across `.await`s.
async fn handler(sku: String) -> u32 {
    let span = lstrace::span("handle")
        .with_tag("width", 640)
        .start_detached();
    async move {
        lstrace::set_tag("sku", sku);
        let half = resize(640).await;
        yield_now().await;
        lstrace::log([("event", "resized")]);
        half
    }
    .in_span(span)
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_span_runs_a_send_future_across_awaits() {
    let capture = TestRecorder::install().capture();
    let task = tokio::spawn(require_send(capture.scope(handler("tea".to_owned()))));
    assert_eq!(task.await.unwrap(), 320);
    assert_eq!(capture.tree(), "handle [sku=tea, width=640]\n  resize\n");
    let spans = capture.spans();
    let handle = spans.iter().find(|s| s.name() == "handle").unwrap();
    assert_eq!(handle.logs().len(), 1);
}
