//! The sampling policy decides the traces `#[traced]` starts: `#[traced(root)]` and traced
//! calls with no current span; traced calls inside a trace follow it.
#![deny(warnings, clippy::all, clippy::pedantic)]

use lstrace::sampling::{self, Sampling, SamplingStart};
use lstrace::testing::TestRecorder;
use lstrace::{traced, SpanContext};

/// Leaves out every trace whose first span is named `health*`.
fn setup() -> &'static TestRecorder {
    sampling::set_global(Sampling::parent_based(|start: &SamplingStart<'_>| {
        !start.name().starts_with("health")
    }));
    TestRecorder::install()
}

#[traced(root)]
fn health_root() -> SpanContext {
    health_work()
}

#[traced]
fn health_work() -> SpanContext {
    lstrace::current().expect("a context")
}

#[traced(root)]
fn kept_root() -> SpanContext {
    health_work()
}

#[traced(root)]
async fn health_async() -> SpanContext {
    tokio::task::yield_now().await;
    health_work()
}

#[test]
fn traced_roots_and_calls_without_a_parent_are_sampled_by_the_policy() {
    let recorder = setup();
    let dropped = health_root();
    assert!(!dropped.is_sampled());
    assert!(recorder.trace(dropped.trace_id()).is_empty());

    // No current span: `health_work` starts a trace, and the policy leaves it out.
    let alone = health_work();
    assert!(!alone.is_sampled());
    assert!(recorder.trace(alone.trace_id()).is_empty());

    // Inside a kept trace, `health_work` follows its parent.
    let kept = kept_root();
    assert!(kept.is_sampled());
    let names: Vec<String> = recorder
        .trace(kept.trace_id())
        .iter()
        .map(|s| s.name().to_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"kept_root".to_owned()) && names.contains(&"health_work".to_owned()));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let async_dropped = runtime.block_on(health_async());
    assert!(!async_dropped.is_sampled());
    assert!(recorder.trace(async_dropped.trace_id()).is_empty());
}
