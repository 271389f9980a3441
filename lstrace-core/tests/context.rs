//! The current span follows tasks, not threads.

use lstrace_core::testing::TestRecorder;
use lstrace_core::{span, FutureExt};

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
fn dropped_future_finishes_its_span_as_cancelled() {
    let capture = TestRecorder::install().capture();
    capture.in_scope(|| {
        let fut = std::future::pending::<()>().in_span(span("never").start_detached());
        drop(fut);
    });
    assert_eq!(capture.tree(), "never [cancelled=true]\n");
}

#[test]
fn an_entered_span_held_across_await_stays_with_its_task() {
    let capture = TestRecorder::install().capture();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // An `EnteredSpan` is not Send, so the tasks that hold one across an await are local tasks.
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
