//! `crate = path`: a facade crate that re-exports lstrace, under a name of its own, lets its
//! users trace without depending on lstrace themselves.
#![deny(warnings)]

mod my_facade {
    pub use lstrace as tracing_impl;
    pub use lstrace::traced;
}

use my_facade::traced;

#[traced(crate = my_facade::tracing_impl, tags(n = 1), args(x), kind = server, err, ret)]
fn sync(x: u32) -> Result<u32, String> {
    Ok(x)
}

#[traced(crate = crate::my_facade::tracing_impl, err(?))]
async fn in_async(x: u32) -> Result<u32, String> {
    sync(x)
}

#[traced(crate = my_facade::tracing_impl)]
fn boxed(x: u32) -> std::pin::Pin<Box<dyn std::future::Future<Output = u32> + Send>> {
    Box::pin(async move { x })
}

fn main() {
    let capture = my_facade::tracing_impl::testing::TestRecorder::install().capture();
    let value = capture.in_scope(|| futures::executor::block_on(async { in_async(2).await }));
    assert_eq!(value, Ok(2));
    assert_eq!(capture.in_scope(|| futures::executor::block_on(boxed(3))), 3);
    assert_eq!(
        capture.tree(),
        "in_async\n  sync [n=1, return=2, span.kind=server, x=2]\nboxed\n"
    );
}
