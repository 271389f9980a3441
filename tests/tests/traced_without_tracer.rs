//! With no tracer installed (this test binary never installs one), traced functions run
//! and return their values, and evaluate none of their tag expressions.
#![deny(warnings, clippy::all, clippy::pedantic)]

use futures::future::BoxFuture;
use futures::FutureExt as _;
use lstrace::traced;
use std::sync::atomic::{AtomicUsize, Ordering};

static EVALUATED: AtomicUsize = AtomicUsize::new(0);

fn counted<T>(value: T) -> T {
    EVALUATED.fetch_add(1, Ordering::SeqCst);
    value
}

#[traced(tags(m = counted(n), label = ?counted("x")), args(n), ret)]
fn double(n: u32) -> u32 {
    assert!(lstrace::current().is_none());
    n * 2
}

#[traced(tags(n = counted(n)), err)]
fn check(n: u32) -> Result<u32, String> {
    if n == 0 {
        return Err("zero".to_owned());
    }
    Ok(n)
}

#[traced(tags(n = counted(n)), ret)]
async fn triple(n: u32) -> u32 {
    tokio::task::yield_now().await;
    assert!(lstrace::current().is_none());
    n * 3
}

#[traced(tags(n = counted(n)))]
fn boxed(n: u32) -> BoxFuture<'static, u32> {
    async move { n + 1 }.boxed()
}

#[test]
fn traced_functions_run_and_evaluate_no_tag_without_a_tracer() {
    assert!(!lstrace::recorder::is_enabled());
    assert_eq!(double(4), 8);
    assert_eq!(check(0), Err("zero".to_owned()));
    assert_eq!(check(2), Ok(2));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    assert_eq!(runtime.block_on(triple(2)), 6);
    assert_eq!(runtime.block_on(boxed(2)), 3);
    assert_eq!(EVALUATED.load(Ordering::SeqCst), 0);
    assert!(lstrace::recorder::installed().is_none());
}
