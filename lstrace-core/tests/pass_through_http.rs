//! Without a tracer (this test binary never installs one), the HTTP integrations pass the
//! caller's context on: the tower layer makes it current in the handler, and the reqwest
//! integration injects it into the downstream call. Apart from `pass_through.rs` because it
//! needs the features `reqwest` and `tower`.

// The HTTP helpers alone: the rest of `support` needs the reporter.
#[path = "support/http.rs"]
mod http_support;

use http_support::{call_as, calling_service, echo_service};
use lstrace_core::http::TraceLayer;
use lstrace_core::propagation::Format;
use lstrace_core::{SpanContext, SpanId, TraceId};

#[tokio::test]
async fn an_http_service_without_a_tracer_passes_the_callers_context_on() {
    assert!(!lstrace_core::recorder::is_enabled());
    let upstream = calling_service(echo_service().await, TraceLayer::new()).await;
    let caller = SpanContext::new(TraceId::random(), SpanId::random(), false)
        .with_baggage_item("user", "ann");
    let echoed = call_as(&caller, Format::TraceContext, upstream).await;
    assert!(
        echoed.contains(&format!(
            "traceparent: 00-{}-{}-00\n",
            caller.trace_id(),
            caller.span_id()
        )),
        "{echoed}"
    );
    assert!(echoed.contains("baggage: user=ann\n"), "{echoed}");
}
