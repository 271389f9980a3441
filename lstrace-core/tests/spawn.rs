//! `lstrace_core::spawn` (feature `tokio`): a spawned task keeps the span it was given,
//! whichever worker thread runs it and however its awaits interleave with other tasks'.

use lstrace_core::testing::TestRecorder;
use lstrace_core::{span, FutureExt};
use std::time::Duration;

#[test]
fn interleaved_tasks_on_one_thread_never_share_spans() {
    let capture = TestRecorder::install().capture();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(capture.scope(async {
        let mut handles = Vec::new();
        for i in 0..2000u32 {
            let task = async move {
                tokio::time::sleep(Duration::from_millis(u64::from(i % 7))).await;
                let _inner = span("inner").with_tag("task", i).start();
            }
            .in_span(span("task").with_tag("task", i).start_detached());
            handles.push(lstrace_core::spawn(task));
        }
        for h in handles {
            h.await.unwrap();
        }
    }));
    let spans = capture.spans();
    assert_eq!(spans.len(), 4000);
    for inner in spans.iter().filter(|s| s.name() == "inner") {
        let parent = spans
            .iter()
            .find(|s| Some(s.context().span_id().get()) == inner.parent_id())
            .expect("parent recorded");
        assert_eq!(parent.name(), "task");
        assert_eq!(parent.tag("task"), inner.tag("task"));
    }
}

#[test]
fn tasks_keep_their_spans_when_they_migrate() {
    let capture = TestRecorder::install().capture();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(capture.scope(async {
        let handles: Vec<_> = (0..200u32)
            .map(|i| {
                lstrace_core::spawn(
                    async move {
                        for _ in 0..5 {
                            tokio::task::yield_now().await;
                            let _step = span("step").with_tag("task", i).start();
                        }
                    }
                    .in_span(span("task").with_tag("task", i).start_detached()),
                )
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    }));
    let spans = capture.spans();
    assert_eq!(spans.len(), 1200);
    for step in spans.iter().filter(|s| s.name() == "step") {
        let parent = spans
            .iter()
            .find(|s| Some(s.context().span_id().get()) == step.parent_id())
            .unwrap();
        assert_eq!(parent.tag("task"), step.tag("task"));
    }
}

#[test]
fn spawn_and_spawn_blocking_carry_the_current_span() {
    let capture = TestRecorder::install().capture();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(capture.scope(async {
        let parent = span("parent").start_detached();
        async {
            lstrace_core::spawn(async { span("spawned").start().finish() })
                .await
                .unwrap();
            lstrace_core::spawn_blocking(|| span("blocking").start().finish())
                .await
                .unwrap();
            tokio::spawn(async { span("plain tokio spawn").start().finish() })
                .await
                .unwrap();
        }
        .in_span(parent)
        .await;
    }));
    assert_eq!(capture.tree(), "parent\n  spawned\n  blocking\n");
}
