//! The `tracing` bridge: `tracing` spans and events join lstrace traces, nested with
//! `#[traced]` spans in both directions, with typed fields, late records, logs, and the
//! filters users put next to it.
#![deny(warnings, clippy::all, clippy::pedantic)]

use lstrace::testing::tree::TreeStyle;
use lstrace::testing::{Capture, TestRecorder};
use lstrace::FutureExt as _;
use lstrace::{traced, Relationship, TagValue};
use std::io::Write;
use std::sync::{Arc, Mutex, Once, PoisonError};
use tokio::task::yield_now;
use tracing::field::Empty;
use tracing::Instrument as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer as _};

/// The process's subscriber (so that tasks on every worker thread see it): the registry and
/// the bridge; tests that need another stack set theirs on their own thread.
fn capture() -> Capture {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(lstrace::bridge::tracing::layer()),
        )
        .expect("no other global subscriber in this test binary");
    });
    TestRecorder::install().capture()
}

fn with_logs(capture: &Capture) -> String {
    capture.tree_with(TreeStyle::default().with_logs(true))
}

#[traced]
fn traced_leaf() {}

#[traced]
fn traced_around_tracing() {
    let _span = tracing::info_span!(target: "app", "tracing_inside").entered();
    traced_leaf();
}

#[test]
fn spans_nest_both_ways_in_one_trace() {
    let capture = capture();
    capture.in_scope(|| {
        let _outer = tracing::info_span!(target: "app", "tracing_outer").entered();
        traced_around_tracing();
        // Propagation sees the innermost span, of either kind.
        let current = lstrace::current().expect("a span is current");
        tracing::info_span!(target: "app", "sibling").in_scope(|| {
            let inner = lstrace::current().expect("a span is current");
            assert_ne!(inner.span_id(), current.span_id());
            assert_eq!(inner.trace_id(), current.trace_id());
        });
    });
    // The capture holds one trace: every span listed is in it.
    assert_eq!(
        capture.tree(),
        "tracing_outer [target=app]\n  traced_around_tracing\n    tracing_inside [target=app]\n      \
         traced_leaf\n  sibling [target=app]\n"
    );
}

#[test]
fn fields_keep_their_types() {
    let capture = capture();
    capture.in_scope(|| {
        let error = std::io::Error::other("disk full");
        tracing::info_span!(
            "typed",
            i = -3_i64,
            u = 7_u64,
            big = u64::MAX,
            f = 1.5_f64,
            b = true,
            s = "text",
            d = ?(1, "a"),
            shown = %"display",
            e = &error as &(dyn std::error::Error + 'static),
        )
        .in_scope(|| {});
    });
    let span = capture.span("typed").expect("recorded");
    assert_eq!(span.tag("i"), Some(&TagValue::Int(-3)));
    assert_eq!(span.tag("u"), Some(&TagValue::Int(7)));
    assert_eq!(span.tag("big"), Some(&TagValue::from(u64::MAX.to_string())));
    assert_eq!(span.tag("f"), Some(&TagValue::Float(1.5)));
    assert_eq!(span.tag("b"), Some(&TagValue::Bool(true)));
    assert_eq!(span.tag("s"), Some(&TagValue::from("text")));
    assert_eq!(span.tag("d"), Some(&TagValue::from("(1, \"a\")")));
    assert_eq!(span.tag("shown"), Some(&TagValue::from("display")));
    assert_eq!(span.tag("e"), Some(&TagValue::from("disk full")));
    assert_eq!(
        span.tag("target"),
        Some(&TagValue::from(module_path!().to_owned()))
    );
}

#[derive(Debug)]
enum OtelKind {
    Client,
}

#[test]
fn opentelemetry_fields_mean_what_they_mean_there() {
    let capture = capture();
    capture.in_scope(|| {
        tracing::info_span!(
            target: "app",
            "generic",
            otel.name = "GET /users",
            otel.kind = "server",
            error = true
        )
        .in_scope(|| {});
        tracing::info_span!(target: "app", "debug_kind", otel.kind = ?OtelKind::Client)
            .in_scope(|| {});
        tracing::info_span!(target: "app", "status", otel.status_code = "ERROR", span.kind = "producer")
            .in_scope(|| {});
        tracing::info_span!(target: "app", "ok", otel.status_code = "OK", otel.kind = "internal")
            .in_scope(|| {});
        tracing::info_span!(target: "app", "message", error = %"bad input").in_scope(|| {});
    });
    assert_eq!(
        capture.tree(),
        "GET /users [error=true, span.kind=server, target=app]\n\
         debug_kind [span.kind=client, target=app]\n\
         status [error=true, span.kind=producer, target=app]\n\
         ok [target=app]\n\
         message [error=true, error.message=bad input, target=app]\n"
    );
}

#[test]
fn fields_recorded_later_become_tags() {
    let capture = capture();
    capture.in_scope(|| {
        let span = tracing::info_span!(
            target: "app",
            "late",
            rows = Empty,
            otel.name = Empty,
            otel.kind = Empty,
            from_thread = Empty
        );
        span.record("rows", 3);
        let entered = span.enter();
        span.record("otel.name", "renamed");
        span.record("otel.kind", "client");
        // From another thread while this one is inside the span.
        std::thread::scope(|s| {
            s.spawn(|| span.record("from_thread", true));
        });
        drop(entered);
    });
    assert_eq!(
        capture.tree(),
        "renamed [from_thread=true, rows=3, span.kind=client, target=app]\n"
    );
}

#[test]
fn lstrace_calls_inside_a_tracing_span_reach_it() {
    let capture = capture();
    capture.in_scope(|| {
        let span = tracing::info_span!(target: "app", "outer");
        span.in_scope(|| {
            lstrace::set_tag("user", 7);
            lstrace::log([("event", "first")]);
            lstrace::set_baggage_item("tenant", "a");
        });
        // Entered again, on this thread and on another: what was set is still there.
        span.in_scope(|| {
            assert_eq!(lstrace::baggage_item("tenant").as_deref(), Some("a"));
            lstrace::set_tag("user", 8);
            traced_leaf();
        });
        std::thread::scope(|s| {
            s.spawn(|| {
                span.in_scope(|| {
                    assert_eq!(lstrace::baggage_item("tenant").as_deref(), Some("a"));
                    tracing::info!("elsewhere");
                });
            });
        });
        // Entered twice at once: each entry's changes reach the span.
        let first = span.enter();
        span.in_scope(|| lstrace::set_tag("inner", true));
        lstrace::set_tag("outer", true);
        drop(first);
    });
    assert_eq!(
        with_logs(&capture),
        "outer [inner=true, outer=true, target=app, user=8]\n  - event=first\n  \
         - level=INFO, message=elsewhere\n  traced_leaf\n"
    );
    let outer = capture.span("outer").expect("recorded");
    assert_eq!(outer.context().baggage_item("tenant"), Some("a"));
}

#[test]
fn a_span_entered_before_follows_from_keeps_its_trace() {
    let capture = capture();
    capture.in_scope(|| {
        let produce = tracing::info_span!(target: "app", "produce_first");
        let consume = tracing::info_span!(target: "app", parent: None, "entered_consumer");
        consume.in_scope(|| {});
        consume.follows_from(&produce);
    });
    assert!(
        capture.span("entered_consumer").is_none(),
        "kept its own trace"
    );
    let consume = TestRecorder::install()
        .spans()
        .into_iter()
        .find(|s| s.name() == "entered_consumer")
        .expect("recorded");
    assert_eq!(consume.parent(), None);
    assert_eq!(
        consume.logs()[0].field("event"),
        Some(&TagValue::from("follows_from"))
    );
}

#[traced]
fn traced_logging() {
    tracing::warn!(attempt = 2, "retrying");
}

#[test]
fn events_become_logs_of_the_innermost_span() {
    let capture = capture();
    capture.in_scope(|| {
        let work = tracing::info_span!(target: "app", "work");
        work.in_scope(|| {
            tracing::info!(n = 1, "step");
            traced_logging();
        });
        // An event with an explicit parent goes to that span, wherever it is.
        tracing::info!(parent: &work, done = true);
        tracing::info_span!(target: "app", "failing").in_scope(|| tracing::error!("failed"));
        // Outside any span: nowhere to go.
        tracing::info!("dropped");
    });
    assert_eq!(
        with_logs(&capture),
        "work [target=app]\n  - level=INFO, message=step, n=1\n  - level=INFO, done=true\n  \
         traced_logging\n    - level=WARN, message=retrying, attempt=2\n\
         failing [error=true, target=app]\n  - level=ERROR, message=failed\n"
    );
}

#[test]
fn error_events_can_leave_the_span_unmarked() {
    let capture = capture();
    let subscriber = tracing_subscriber::registry().with(
        lstrace::bridge::tracing::layer()
            .with_error_events(false)
            .with_target_tag(false),
    );
    tracing::subscriber::with_default(subscriber, || {
        capture.in_scope(|| {
            tracing::info_span!("failing").in_scope(|| tracing::error!("failed"));
        });
    });
    assert_eq!(
        with_logs(&capture),
        "failing\n  - level=ERROR, message=failed\n"
    );
}

#[test]
fn a_per_layer_filter_leaves_no_hole() {
    let capture = capture();
    let filter = Targets::new()
        .with_target("kept", LevelFilter::INFO)
        .with_target("noisy", LevelFilter::OFF);
    let subscriber =
        tracing_subscriber::registry().with(lstrace::bridge::tracing::layer().with_filter(filter));
    tracing::subscriber::with_default(subscriber, || {
        capture.in_scope(|| {
            let _a = tracing::info_span!(target: "kept", "a").entered();
            let _noise = tracing::info_span!(target: "noisy", "noise").entered();
            let _debug = tracing::debug_span!(target: "kept", "debug").entered();
            let _b = tracing::info_span!(target: "kept", "b").entered();
            tracing::debug!(target: "kept", "too fine");
            tracing::info!(target: "kept", "seen");
            traced_leaf();
        });
    });
    assert_eq!(
        with_logs(&capture),
        "a [target=kept]\n  b [target=kept]\n    - level=INFO, message=seen\n    traced_leaf\n"
    );
}

/// A `Write` that tests read back.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<Vec<u8>>>);

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Output {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

#[test]
fn env_filter_and_fmt_work_next_to_the_bridge() {
    let capture = capture();
    let output = Output::default();
    let writer = output.clone();
    let subscriber = tracing_subscriber::registry()
        .with(EnvFilter::new("info,noisy=warn"))
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .without_time()
                .with_writer(move || writer.clone()),
        )
        .with(lstrace::bridge::tracing::layer());
    tracing::subscriber::with_default(subscriber, || {
        capture.in_scope(|| {
            let _request = tracing::info_span!(target: "app", "request", id = 7).entered();
            tracing::info_span!(target: "noisy", "chatter").in_scope(|| {
                tracing::warn!(target: "noisy", "loud");
            });
            tracing::debug_span!(target: "app", "detail").in_scope(|| {
                tracing::info!(target: "app", "done");
            });
        });
    });
    assert_eq!(
        with_logs(&capture),
        "request [id=7, target=app]\n  - level=WARN, message=loud\n  - level=INFO, message=done\n"
    );
    let text = output.text();
    assert!(text.contains("request{id=7}: noisy: loud"), "{text}");
    assert!(text.contains("request{id=7}: app: done"), "{text}");
}

#[test]
fn follows_from_references_the_cause() {
    let capture = capture();
    capture.in_scope(|| {
        let produce = tracing::info_span!(target: "app", "produce");
        let consume = tracing::info_span!(target: "app", parent: None, "consume");
        consume.follows_from(&produce);
        // A span with a parent keeps it, and notes the other span in a log.
        let child = tracing::info_span!(target: "app", parent: &produce, "child");
        child.follows_from(&consume);
    });
    let produce = capture.span("produce").expect("in the capture's trace");
    let consume = capture
        .span("consume")
        .expect("joined the producer's trace");
    assert_eq!(
        consume.parent(),
        Some((Relationship::FollowsFrom, produce.context().span_id().get()))
    );
    let child = capture.span("child").expect("recorded");
    assert_eq!(
        child.parent(),
        Some((Relationship::ChildOf, produce.context().span_id().get()))
    );
    assert_eq!(
        child.logs()[0].field("span_id"),
        Some(&TagValue::from(consume.context().span_id().to_string()))
    );
}

#[tracing::instrument(target = "app")]
async fn tracing_step(n: u32) {
    yield_now().await;
    traced_async_leaf().await;
}

#[traced]
async fn traced_async_leaf() {
    yield_now().await;
    tracing::info!(target: "app", "leaf");
}

#[traced]
async fn traced_root() {
    tracing_step(1).await;
    lstrace::spawn(tracing_step(2)).await.expect("task");
    tokio::spawn(tracing_step(3).instrument(tracing::info_span!(target: "app", "handed_over")))
        .await
        .expect("task");
    async {
        yield_now().await;
        traced_async_leaf().await;
    }
    .instrument(tracing::info_span!(target: "app", "instrumented"))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_spans_nest_both_ways_across_awaits_tasks_and_threads() {
    let expected = "traced_root\n  tracing_step [n=1, target=app]\n    traced_async_leaf\n  \
                    tracing_step [n=2, target=app]\n    traced_async_leaf\n  handed_over [target=app]\n    \
                    tracing_step [n=3, target=app]\n      traced_async_leaf\n  instrumented [target=app]\n    \
                    traced_async_leaf\n";
    let captures: Vec<Capture> = (0..4).map(|_| capture()).collect();
    let tasks: Vec<_> = captures
        .iter()
        .map(|c| tokio::spawn(c.scope(traced_root())))
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    for capture in &captures {
        assert_eq!(capture.tree(), expected);
    }
}

fn current_tracing_span() -> Option<&'static str> {
    tracing::Span::current()
        .metadata()
        .map(tracing::Metadata::name)
}

#[traced]
async fn traced_spawner() {
    // lstrace's adapters carry the innermost span (this one) and the current `tracing` span.
    tokio::spawn(
        async {
            yield_now().await;
            assert_eq!(current_tracing_span(), Some("request"));
            tracing::info_span!(target: "app", "in_task").in_scope(|| {});
            traced_async_leaf().await;
        }
        .in_current_context(),
    )
    .await
    .expect("task");
    lstrace::spawn_blocking(|| {
        assert_eq!(current_tracing_span(), Some("request"));
        tracing::info_span!(target: "app", "blocking").in_scope(|| {});
    })
    .await
    .expect("task");
    lstrace::spawn(async {
        yield_now().await;
        assert_eq!(current_tracing_span(), Some("request"));
    })
    .await
    .expect("task");
    // tracing's adapter, with both traits in scope: a span made here is this one's child.
    tokio::spawn(
        traced_async_leaf().instrument(tracing::info_span!(target: "app", "tracing_adapter")),
    )
    .await
    .expect("task");
    async { yield_now().await }.in_current_span().await;
    async { traced_async_leaf().await }
        .in_span(lstrace::span("manual").start_detached())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_adapters_work_with_both_traits_in_scope_and_carry_both_contexts() {
    let capture = capture();
    capture
        .scope(async {
            traced_spawner()
                .instrument(tracing::info_span!(target: "app", "request"))
                .await;
        })
        .await;
    assert_eq!(
        capture.tree(),
        "request [target=app]\n  traced_spawner\n    in_task [target=app]\n    traced_async_leaf\n    \
         blocking [target=app]\n    tracing_adapter [target=app]\n      traced_async_leaf\n    \
         manual\n      traced_async_leaf\n"
    );
}
