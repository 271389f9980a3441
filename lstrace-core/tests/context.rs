//! The current span follows tasks, not threads.

use lstrace_core::testing::TestRecorder;
use lstrace_core::{span, FutureExt};
use std::time::Duration;

async fn child(name: &'static str) {
    let s = span(name).start_detached();
    async {
        tokio::task::yield_now().await;
        let _leaf = span("leaf").start();
    }
    .in_span(s)
    .await;
}

#[test]
fn async_children_nest_across_awaits() {
    let capture = TestRecorder::install().capture();
    futures::executor::block_on(capture.scope(async {
        let root = span("root").start_detached();
        async {
            child("a").await;
            child("b").await;
        }
        .in_span(root)
        .await;
    }));
    assert_eq!(capture.tree(), "root\n  a\n    leaf\n  b\n    leaf\n");
}

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
fn dropped_future_finishes_its_span_as_cancelled() {
    let capture = TestRecorder::install().capture();
    capture.in_scope(|| {
        let fut = std::future::pending::<()>().in_span(span("never").start_detached());
        drop(fut);
    });
    assert_eq!(capture.tree(), "never [cancelled=true]\n");
}

#[test]
fn guard_held_across_await_stays_with_its_task() {
    let capture = TestRecorder::install().capture();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // A guard is not Send, so the tasks that hold one across an await are local tasks.
    let local = tokio::task::LocalSet::new();
    local.block_on(
        &rt,
        capture.scope(async {
            let a = tokio::task::spawn_local(
                async {
                    let _held = span("held").start();
                    tokio::task::yield_now().await;
                    let _inner = span("under-held").start();
                }
                .in_current_context(),
            );
            let b = tokio::task::spawn_local(
                async {
                    tokio::task::yield_now().await;
                    let _other = span("other").start();
                }
                .in_current_context(),
            );
            a.await.unwrap();
            b.await.unwrap();
        }),
    );
    assert_eq!(capture.tree(), "held\n  under-held\nother\n");
}

#[test]
fn panic_marks_the_span_failed_and_goes_on() {
    let capture = TestRecorder::install().capture();
    let result = std::panic::catch_unwind(|| {
        capture.in_scope(|| {
            let _s = span("boom").start();
            panic!("expected");
        })
    });
    assert!(result.is_err());
    assert_eq!(capture.tree(), "boom [error=true]\n");
}

#[test]
fn unsampled_roots_record_nothing_below_them() {
    let capture = TestRecorder::install().capture();
    capture.in_scope(|| {
        let _root = span("unsampled").root().sampled(false).start();
        let _child = span("child").start();
        assert!(lstrace_core::current().is_some_and(|c| !c.is_sampled()));
    });
    let recorder = TestRecorder::install();
    assert!(recorder
        .spans()
        .iter()
        .all(|s| s.name() != "child" && s.name() != "unsampled"));
}
