//! The process-wide propagation stack (its own test binary: setting it affects the process).

use lstrace_core::propagation::{self, Format, PropagatorStack};
use lstrace_core::{SpanContext, SpanId, TraceId};
use std::collections::HashMap;

#[test]
fn the_global_stack_defaults_and_can_be_replaced() {
    let context = SpanContext::new(TraceId::from_u128(0xabc), SpanId::new(0xdef).unwrap(), true);
    assert_eq!(
        format!("{:?}", propagation::global_stack()),
        "[LightStep, TraceContext, B3Multi]"
    );
    let mut carrier = HashMap::new();
    propagation::inject(&context, &mut carrier);
    let mut names: Vec<&str> = carrier.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "ot-tracer-sampled",
            "ot-tracer-spanid",
            "ot-tracer-traceid",
            "traceparent",
            "x-b3-sampled",
            "x-b3-spanid",
            "x-b3-traceid",
        ]
    );

    propagation::set_global_stack([Format::B3Single, Format::Envoy].into_iter().collect());
    let mut carrier = HashMap::new();
    propagation::inject(&context, &mut carrier);
    let mut names: Vec<&str> = carrier.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["b3", "x-ot-span-context"]);
    assert_eq!(propagation::extract(&carrier), Some(context.clone()));

    // Formats the global stack no longer holds are not read.
    let mut lightstep = HashMap::new();
    PropagatorStack::empty()
        .with(Format::LightStep)
        .inject(&context, &mut lightstep);
    assert_eq!(propagation::extract(&lightstep), None);
}
