//! `#[traced]` on asynchronous code: `async fn` (free, methods, in traits), methods of
//! `#[async_trait]` impls, functions returning boxed futures; nesting across `.await`s and
//! tasks, cancellation and panics.
#![deny(warnings, clippy::all, clippy::pedantic)]

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::FutureExt as _;
use lstrace::testing::{Capture, TestRecorder};
use lstrace::{traced, TagValue};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use tokio::task::yield_now;

fn capture() -> Capture {
    TestRecorder::install().capture()
}

#[traced]
fn sync_step() {}

#[traced(args(n))]
async fn inner(n: u32) -> u32 {
    yield_now().await;
    sync_step();
    n
}

#[traced(args(n))]
async fn outer(n: u32) -> u32 {
    let a = inner(n).await;
    yield_now().await;
    let b = inner(n + 1).await;
    a + b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_spans_nest_across_awaits_and_threads() {
    let expected = "outer [n=1]\n  inner [n=1]\n    sync_step\n  inner [n=2]\n    sync_step\n";
    // Tasks on a multi-threaded runtime, moving between workers at each `.await`, each keep
    // their own spans.
    let captures: Vec<Capture> = (0..4).map(|_| capture()).collect();
    let tasks: Vec<_> = captures
        .iter()
        .map(|c| tokio::spawn(c.scope(outer(1))))
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("task"), 3);
    }
    for capture in &captures {
        assert_eq!(capture.tree(), expected);
    }
}

#[tokio::test]
async fn futures_interleaved_in_one_task_keep_their_own_children() {
    let capture = capture();
    let (a, b) = capture
        .scope(async { futures::join!(outer(1), outer(10)) })
        .await;
    assert_eq!((a, b), (3, 21));
    assert_eq!(
        capture.tree(),
        "outer [n=1]\n  inner [n=1]\n    sync_step\n  inner [n=2]\n    sync_step\n\
         outer [n=10]\n  inner [n=10]\n    sync_step\n  inner [n=11]\n    sync_step\n"
    );
}

#[traced]
async fn ready_at_once() {
    sync_step();
}

#[test]
fn a_traced_future_starts_its_span_at_its_first_poll_under_the_span_current_then() {
    // As an `async fn`'s body does, the span begins when the future is first polled: its
    // parent is the span current at that poll, and a future dropped unpolled records nothing.
    let capture = capture();
    capture.in_scope(|| {
        let maker = lstrace::span("maker").start();
        let made = ready_at_once();
        let never_polled = ready_at_once();
        drop(maker);
        let _poller = lstrace::span("poller").start();
        futures::executor::block_on(made);
        drop(never_polled);
    });
    assert_eq!(
        capture.tree(),
        "maker\npoller\n  ready_at_once\n    sync_step\n"
    );
}

#[traced(args(n))]
async fn suspends(n: u32) {
    let _held = lstrace::span("held").start();
    for _ in 0..n {
        yield_now().await;
        sync_step();
    }
}

#[tokio::test]
async fn a_span_keeps_its_frames_across_suspensions_and_cancellation() {
    // Each `suspends` returns Pending several times with a span entered above its own;
    // interleaved in one task, each keeps its frames to itself.
    let capture = capture();
    capture
        .scope(async { futures::join!(suspends(3), suspends(1)) })
        .await;
    assert_eq!(
        capture.tree(),
        "suspends [n=3]\n  held\n    sync_step\n    sync_step\n    sync_step\n\
         suspends [n=1]\n  held\n    sync_step\n"
    );

    // Dropped after two suspensions: both frames it holds finish as cancelled.
    let capture = self::capture();
    let mut future = Box::pin(capture.scope(suspends(5)));
    assert!(futures::poll!(future.as_mut()).is_pending());
    assert!(futures::poll!(future.as_mut()).is_pending());
    drop(future);
    assert_eq!(
        capture.tree(),
        "suspends [cancelled=true, n=5]\n  held [cancelled=true]\n    sync_step\n"
    );
}

#[tokio::test]
async fn many_interleaved_traced_futures_keep_their_own_frames() {
    // Futures that suspend take their frame lists from those that resumed: hundreds of them
    // interleaved on one thread still never see each other's frames.
    let capture = capture();
    let futures: Vec<_> = (0..300u32).map(|i| suspends(i % 4)).collect();
    capture.scope(futures::future::join_all(futures)).await;
    let spans = capture.spans();
    let parent_of = |span: &lstrace::SpanRecord| {
        spans
            .iter()
            .find(|s| Some(s.context().span_id().get()) == span.parent_id())
            .expect("parent recorded")
    };
    assert_eq!(spans.iter().filter(|s| s.name() == "suspends").count(), 300);
    for held in spans.iter().filter(|s| s.name() == "held") {
        let suspends = parent_of(held);
        assert_eq!(suspends.name(), "suspends");
        let steps = spans
            .iter()
            .filter(|s| {
                s.name() == "sync_step" && s.parent_id() == Some(held.context().span_id().get())
            })
            .count();
        assert_eq!(
            suspends.tag("n"),
            Some(&TagValue::Int(i64::try_from(steps).expect("small")))
        );
    }
    assert_eq!(spans.iter().filter(|s| s.name() == "held").count(), 300);
}

#[traced(err, ret)]
async fn divide(a: &str, b: &str) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    let a: u32 = a.parse()?;
    let b: u32 = b.parse()?;
    yield_now().await;
    if b == 0 {
        return Err("division by zero".into());
    }
    Ok(a / b)
}

#[tokio::test]
async fn err_and_ret_on_async_fn() {
    let capture = capture();
    capture
        .scope(async {
            assert_eq!(divide("9", "3").await.ok(), Some(3));
            assert!(divide("9", "0").await.is_err());
            assert!(divide("x", "1").await.is_err());
        })
        .await;
    let spans = capture.spans();
    assert_eq!(spans[0].tag("return"), Some(&TagValue::Int(3)));
    let messages: Vec<String> = spans[1..]
        .iter()
        .map(|s| {
            assert_eq!(s.tag("error"), Some(&TagValue::Bool(true)));
            s.logs()[0].field("message").expect("message").to_string()
        })
        .collect();
    assert_eq!(
        messages,
        ["division by zero", "invalid digit found in string"]
    );
}

struct Account {
    balance: u64,
}

impl Account {
    #[traced(args(amount), ret)]
    async fn deposit(&mut self, amount: u64) -> u64 {
        yield_now().await;
        self.balance += amount;
        self.balance
    }

    #[traced(tags(balance = self.balance))]
    async fn describe(&self) -> impl fmt::Display {
        yield_now().await;
        format!("{} coins", self.balance)
    }

    #[traced]
    async fn close(self) -> Box<dyn fmt::Display + Send> {
        yield_now().await;
        // Coerces to the declared `Box<dyn Display>`, as without the macro.
        Box::new(self.balance)
    }
}

#[traced(tags(count = items.len()))]
async fn count_matching<T, F>(items: Vec<T>, predicate: F) -> usize
where
    T: Send,
    F: Fn(&T) -> bool + Send,
{
    yield_now().await;
    items.iter().filter(|i| predicate(i)).count()
}

#[traced]
async fn async_items_first() -> u32 {
    fn two() -> u32 {
        2
    }
    yield_now().await;
    two()
}

#[tokio::test]
async fn async_methods_generics_and_impl_trait() {
    let capture = capture();
    capture
        .scope(async {
            let mut account = Account { balance: 1 };
            assert_eq!(account.deposit(4).await, 5);
            assert_eq!(account.describe().await.to_string(), "5 coins");
            assert_eq!(account.close().await.to_string(), "5");
            assert_eq!(count_matching(vec![1, 2, 3], |x| *x > 1).await, 2);
            assert_eq!(async_items_first().await, 2);
        })
        .await;
    assert_eq!(
        capture.tree(),
        "deposit [amount=4, return=5]\ndescribe [balance=5]\nclose\ncount_matching [count=3]\n\
         async_items_first\n"
    );
}

trait Store {
    async fn get(&self, key: u32) -> u32;

    #[traced(args(key))]
    async fn get_twice(&self, key: u32) -> u32 {
        self.get(key).await + self.get(key + 1).await
    }
}

struct Memory;

impl Store for Memory {
    #[traced(args(key))]
    async fn get(&self, key: u32) -> u32 {
        yield_now().await;
        key * 10
    }
}

#[tokio::test]
async fn native_async_fn_in_traits() {
    let capture = capture();
    assert_eq!(capture.scope(Memory.get_twice(1)).await, 30);
    assert_eq!(
        capture.tree(),
        "get_twice [key=1]\n  get [key=1]\n  get [key=2]\n"
    );
}

#[async_trait]
trait Repository {
    async fn load(&self, id: usize) -> Result<String, String>;
    async fn save(&mut self, value: String) -> usize;
}

struct Rows {
    rows: Vec<String>,
}

#[async_trait]
impl Repository for Rows {
    #[traced(args(id), tags(rows = self.rows.len()), err, ret)]
    async fn load(&self, id: usize) -> Result<String, String> {
        yield_now().await;
        sync_step();
        self.rows
            .get(id)
            .cloned()
            .ok_or_else(|| format!("no row {id}"))
    }

    #[traced(name = "Rows::save", ret)]
    async fn save(&mut self, value: String) -> usize {
        inner(1).await;
        self.rows.push(value);
        self.rows.len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_of_async_trait_impls_cover_the_future() {
    let capture = capture();
    let mut rows = Rows { rows: Vec::new() };
    let loaded = tokio::spawn(capture.scope(async move {
        assert_eq!(rows.save("a".to_owned()).await, 1);
        let repository: &(dyn Repository + Send + Sync) = &rows;
        (repository.load(0).await, repository.load(5).await)
    }))
    .await
    .expect("task");
    assert_eq!(loaded, (Ok("a".to_owned()), Err("no row 5".to_owned())));
    // The spans started after the first `.await` are children: the span covers the future's
    // execution, not just its creation.
    assert_eq!(
        capture.tree(),
        "Rows::save [return=1]\n  inner [n=1]\n    sync_step\n\
         load [id=0, return=a, rows=1]\n  sync_step\n\
         load [error=true, id=5, rows=1]\n  sync_step\n"
    );
}

#[traced(ret)]
fn boxed_block(n: u32) -> Pin<Box<dyn Future<Output = u32> + Send>> {
    Box::pin(async move { inner(n).await + 1 })
}

#[traced(err)]
fn boxed_by_combinator(n: u32) -> BoxFuture<'static, Result<u32, String>> {
    let _making = lstrace::span("making").start();
    async move {
        inner(n).await;
        Err(format!("{n} failed"))
    }
    .boxed()
}

#[traced]
fn boxed_with_early_return(n: u32) -> Pin<Box<dyn Future<Output = u32> + Send>> {
    if n == 0 {
        return Box::pin(std::future::ready(0));
    }
    Box::pin(async move { inner(n).await })
}

#[tokio::test]
async fn functions_returning_boxed_futures() {
    let capture = capture();
    capture
        .scope(async {
            assert_eq!(boxed_block(1).await, 2);
            assert_eq!(boxed_by_combinator(2).await, Err("2 failed".to_owned()));
            assert_eq!(boxed_with_early_return(0).await, 0);
            assert_eq!(boxed_with_early_return(3).await, 3);
        })
        .await;
    assert_eq!(
        capture.tree(),
        "boxed_block [return=2]\n  inner [n=1]\n    sync_step\n\
         boxed_by_combinator [error=true]\n  making\n  inner [n=2]\n    sync_step\n\
         boxed_with_early_return\n\
         boxed_with_early_return\n  inner [n=3]\n    sync_step\n"
    );
}

#[traced]
async fn never_finishes() {
    std::future::pending::<()>().await;
}

#[traced]
async fn gives_up() -> &'static str {
    tokio::select! {
        biased;
        () = never_finishes() => "finished",
        () = yield_now() => "gave up",
    }
}

#[tokio::test]
async fn a_future_dropped_before_completing_finishes_its_span_as_cancelled() {
    let capture = capture();
    let mut future = Box::pin(capture.scope(never_finishes()));
    assert!(futures::poll!(future.as_mut()).is_pending());
    drop(future);
    assert_eq!(capture.tree(), "never_finishes [cancelled=true]\n");

    let capture = self::capture();
    assert_eq!(capture.scope(gives_up()).await, "gave up");
    assert_eq!(
        capture.tree(),
        "gives_up\n  never_finishes [cancelled=true]\n"
    );

    let capture = self::capture();
    let rows = Rows { rows: Vec::new() };
    let mut load = Box::pin(capture.scope(rows.load(0)));
    assert!(futures::poll!(load.as_mut()).is_pending());
    drop(load);
    assert_eq!(capture.tree(), "load [cancelled=true, id=0, rows=0]\n");
}

#[traced]
async fn explodes(message: &'static str) {
    yield_now().await;
    panic!("{message}");
}

#[traced]
async fn calls_explodes() {
    let _held = lstrace::span("held across the await").start();
    explodes("kaboom").await;
}

#[traced]
async fn explodes_at_once() {
    let _held = lstrace::span("held").start();
    panic!("at once");
}

#[tokio::test]
async fn a_panic_in_async_code_marks_the_spans_and_goes_on() {
    let capture = capture();
    let payload = std::panic::AssertUnwindSafe(capture.scope(calls_explodes()))
        .catch_unwind()
        .await
        .expect_err("the future panicked");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("kaboom")
    );
    assert_eq!(
        capture.tree(),
        "calls_explodes [error=true]\n  held across the await [error=true]\n    \
         explodes [error=true]\n"
    );

    // The same in the first poll, while the span is still where it was entered.
    let capture = self::capture();
    let payload = std::panic::AssertUnwindSafe(capture.scope(explodes_at_once()))
        .catch_unwind()
        .await
        .expect_err("the future panicked");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"at once"));
    assert_eq!(
        capture.tree(),
        "explodes_at_once [error=true]\n  held [error=true]\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_spawned_traced_task_reaches_the_join_handle() {
    let capture = capture();
    let error = tokio::spawn(capture.scope(explodes("in a task")))
        .await
        .expect_err("the task panicked");
    let payload = error.into_panic();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("in a task")
    );
    assert_eq!(capture.tree(), "explodes [error=true]\n");
}
