// An `EnteredSpan` belongs to the thread that entered it: held across an `.await` it makes the
// future not `Send`, and the error names it. (The fix: `start_detached()` and
// `future.in_span(span)`, as `EnteredSpan`'s documentation shows.)
use std::future::Future;

fn require_send<F: Future + Send>(future: F) -> F {
    future
}

async fn step() {}

async fn handler() {
    let _span = lstrace::span("handle").start();
    step().await;
}

fn main() {
    let _ = require_send(handler());
}
