//! lstrace's prelude glob-imported next to other preludes and `tracing::Instrument`: no name
//! clashes, and every trait method resolves to one trait (no E0034).
#![deny(warnings)]

use futures::prelude::*;
use lstrace::prelude::*;
use tracing::Instrument;

#[traced]
async fn load() -> u32 {
    set_tag("rows", 3);
    7
}

async fn handle() -> u32 {
    let span = span("handle").kind(SpanKind::Server).start_detached();
    let traced = load().in_span(span).await;
    let carried = load().in_current_context().await;
    let instrumented = load().instrument(tracing::info_span!("load")).await;
    let current = load().in_current_span().await;
    let mapped = load().map(|n| n + 1).await;
    let context: Option<SpanContext> = current_context();
    traced + carried + instrumented + current + mapped + u32::from(context.is_some())
}

fn current_context() -> Option<SpanContext> {
    current()
}

fn main() {
    let _ = futures::executor::block_on(handle());
}
