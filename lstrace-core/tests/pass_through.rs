//! Without a tracer (this test binary never installs one), nothing is recorded but contexts
//! pass through: a service that has not called `init` keeps its caller's trace, decision
//! and baggage for the calls it makes, as OpenTelemetry's API does without an SDK. The HTTP
//! integrations' part is `pass_through_http.rs`.

use lstrace_core::propagation;
use lstrace_core::{span, SpanContext, SpanId, TraceId};
use std::collections::HashMap;

fn incoming(sampled: bool) -> SpanContext {
    SpanContext::new(TraceId::random(), SpanId::random(), sampled).with_baggage_item("user", "ann")
}

#[test]
fn a_child_of_an_extracted_context_passes_it_through() {
    assert!(!lstrace_core::recorder::is_enabled());
    for sampled in [true, false] {
        let mut carrier = HashMap::new();
        propagation::inject(&incoming(sampled), &mut carrier);
        let extracted = propagation::extract(&carrier).unwrap();
        let outgoing = {
            let mut entered = span("handle").child_of(&extracted).start();
            assert_eq!(entered.context(), Some(extracted.clone()));
            assert_eq!(lstrace_core::current(), Some(extracted.clone()));
            entered.set_baggage_item("added", "in-rust");
            {
                let _child = span("child").start();
                assert_eq!(
                    lstrace_core::baggage_item("added").as_deref(),
                    Some("in-rust")
                );
            }
            let mut carrier = HashMap::new();
            propagation::inject(&lstrace_core::current().unwrap(), &mut carrier);
            carrier
        };
        assert_eq!(
            lstrace_core::current(),
            None,
            "the entered span took its context out"
        );
        let downstream = propagation::extract(&outgoing).unwrap();
        assert_eq!(downstream.trace_id().low(), extracted.trace_id().low());
        assert_eq!(downstream.span_id(), extracted.span_id());
        assert_eq!(downstream.is_sampled(), sampled);
        assert_eq!(downstream.baggage_item("user"), Some("ann"));
        assert_eq!(downstream.baggage_item("added"), Some("in-rust"));
    }
}

#[test]
fn detached_spans_and_entered_contexts_pass_through() {
    let parent = incoming(false);
    let mut detached = span("detached").child_of(&parent).start_detached();
    assert_eq!(detached.context(), Some(parent.clone()));
    detached.in_scope(|| {
        assert_eq!(lstrace_core::current(), Some(parent.clone()));
        lstrace_core::set_baggage_item("tier", "gold");
        assert_eq!(lstrace_core::baggage_item("tier").as_deref(), Some("gold"));
    });
    assert_eq!(
        detached.context().unwrap().baggage_item("tier"),
        Some("gold")
    );
    // Spans without an explicit parent have no context of their own.
    assert_eq!(span("root").start().context(), None);
    assert_eq!(span("root").start_detached().context(), None);
    let _entered = parent.enter();
    assert_eq!(span("inside").start().context(), Some(parent.clone()));
}
