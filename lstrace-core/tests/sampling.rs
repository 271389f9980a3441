//! Sampling decisions that travel: an upstream "not sampled" reaches downstream in every
//! format with its baggage, and the process's sampling policy decides new traces.
//!
//! Every test here installs the same policy (parent-based, a user-defined sampler that
//! leaves out operations named `drop*` and spans tagged `drop`), so that tests running in
//! parallel agree on it.

use lstrace_core::propagation::{Format, PropagatorStack};
use lstrace_core::sampling::{self, Sampling, SamplingStart};
use lstrace_core::testing::TestRecorder;
use lstrace_core::{span, SpanContext, SpanId, TraceId};
use std::collections::HashMap;

const FORMATS: [Format; 5] = [
    Format::LightStep,
    Format::B3Multi,
    Format::B3Single,
    Format::TraceContext,
    Format::Envoy,
];

/// Installs the test recorder and this binary's sampling policy.
fn setup() -> &'static TestRecorder {
    sampling::set_global(Sampling::parent_based(|start: &SamplingStart<'_>| {
        !start.name().starts_with("drop") && start.tags().get("drop").is_none()
    }));
    TestRecorder::install()
}

fn carries_baggage(format: Format) -> bool {
    !matches!(format, Format::B3Multi | Format::B3Single)
}

fn inject(format: Format, context: &SpanContext) -> HashMap<String, String> {
    let mut carrier = HashMap::new();
    PropagatorStack::empty()
        .with(format)
        .inject(context, &mut carrier);
    carrier
}

fn extract(format: Format, carrier: &HashMap<String, String>) -> SpanContext {
    PropagatorStack::empty()
        .with(format)
        .extract(carrier)
        .unwrap_or_else(|| panic!("{format:?}: no context in {carrier:?}"))
}

/// A service in the middle of a chain, with manual propagation: the caller said "not
/// sampled"; the service's span and the call it makes keep the trace, the decision and the
/// baggage, and add an item.
#[test]
fn an_unsampled_decision_and_baggage_travel_through_a_service_in_every_format() {
    let recorder = setup();
    for format in FORMATS {
        let trace = TraceId::from_u128(u128::from(lstrace_core::SpanId::random().get()));
        let upstream = SpanContext::new(trace, SpanId::new(0x00f0_67aa_0ba9_02b7).unwrap(), false)
            .with_baggage_item("user", "ann");
        let incoming = extract(format, &inject(format, &upstream));
        assert!(!incoming.is_sampled(), "{format:?}");

        let outgoing = {
            let mut handle = span("handle").child_of(&incoming).start();
            let context = handle
                .context()
                .expect("a child of a context has a context");
            assert_eq!(context.trace_id(), trace, "{format:?}");
            assert_ne!(
                context.span_id(),
                incoming.span_id(),
                "{format:?}: a new span id"
            );
            assert!(!context.is_sampled(), "{format:?}");
            assert_eq!(lstrace_core::current(), Some(context.clone()), "{format:?}");
            handle.set_baggage_item("added", "in-rust");
            let context = handle.context().unwrap();
            assert_eq!(lstrace_core::current(), Some(context.clone()), "{format:?}");
            // A grandchild (no frame of its own: it costs nothing) runs under it too.
            let _work = span("work").start();
            let current = lstrace_core::current().expect("still inside the trace");
            assert_eq!(current.baggage_item("added"), Some("in-rust"));
            inject(format, &current)
        };

        let downstream = extract(format, &outgoing);
        assert_eq!(downstream.trace_id(), trace, "{format:?}");
        assert!(!downstream.is_sampled(), "{format:?}");
        if carries_baggage(format) {
            let mut baggage = downstream.baggage().collect::<Vec<_>>();
            baggage.sort_unstable();
            assert_eq!(
                baggage,
                [("added", "in-rust"), ("user", "ann")],
                "{format:?}"
            );
        }
        assert!(
            recorder.trace(trace).is_empty(),
            "{format:?}: nothing recorded"
        );
    }
}

/// `EnteredSpan::set_baggage_item` under an unsampled parent reaches the span's children, and
/// not its parent.
#[test]
fn baggage_set_on_an_unsampled_child_is_kept_for_its_children_only() {
    let recorder = setup();
    let root = span("drop root").root().start();
    let root_context = root.context().expect("an unsampled root has a context");
    assert!(!root_context.is_sampled());
    {
        let mut child = span("child").start();
        assert_eq!(child.context(), Some(root_context.clone()));
        child.set_baggage_item("added", "in-rust");
        assert_eq!(
            child.context().unwrap().baggage_item("added"),
            Some("in-rust")
        );
        let _grandchild = span("grandchild").start();
        assert_eq!(
            lstrace_core::baggage_item("added").as_deref(),
            Some("in-rust")
        );
    }
    assert_eq!(lstrace_core::current(), Some(root_context.clone()));
    assert_eq!(lstrace_core::baggage_item("added"), None);
    drop(root);
    assert!(recorder.trace(root_context.trace_id()).is_empty());
}

/// A detached child of an unsampled span has a context of its own too.
#[test]
fn a_detached_child_of_an_unsampled_span_has_a_context() {
    let _recorder = setup();
    let root = span("drop root").root().start();
    let parent = root.context().unwrap();
    let child = span("detached").start_detached();
    assert!(child.is_noop());
    let context = child.context().expect("a context");
    assert_eq!(context.trace_id(), parent.trace_id());
    assert_ne!(context.span_id(), parent.span_id());
    assert!(!context.is_sampled());
}

/// The policy decides new traces by operation name and start tags: `span(..).root()`, and
/// spans with no current span. Children follow.
#[test]
fn the_policy_decides_new_traces_by_name_and_tags() {
    let recorder = setup();
    let mut traces = Vec::new();
    for (name, tagged, recorded) in [
        ("kept", false, true),
        ("drop me", false, false),
        ("kept", true, false),
    ] {
        let explicit_root = {
            let mut builder = span(name).root();
            if tagged {
                builder = builder.with_tag("drop", true);
            }
            builder.start()
        };
        let context = explicit_root.context().unwrap();
        assert_eq!(context.is_sampled(), recorded, "{name} tagged={tagged}");
        {
            let _child = span("child").start();
        }
        drop(explicit_root);
        traces.push((context.trace_id(), recorded, 2));

        // No current span: a new trace, decided the same way.
        let mut builder = span(name);
        if tagged {
            builder = builder.with_tag("drop", true);
        }
        let implicit_root = builder.start_detached();
        let context = implicit_root.context().unwrap();
        assert_eq!(context.is_sampled(), recorded, "{name} tagged={tagged}");
        drop(implicit_root);
        traces.push((context.trace_id(), recorded, 1));
    }
    for (trace, recorded, spans) in traces {
        let expected = if recorded { spans } else { 0 };
        assert_eq!(recorder.trace(trace).len(), expected);
    }
}

/// `SpanBuilder::sampled` overrides the policy for one trace; an explicit parent's decision
/// is followed (the policy is parent-based) whatever the sampler would say.
#[test]
fn explicit_decisions_win_over_the_sampler() {
    let recorder = setup();
    let forced = span("drop this").root().sampled(true).start();
    let forced_context = forced.context().unwrap();
    assert!(forced_context.is_sampled());
    drop(forced);
    let refused = span("kept").root().sampled(false).start();
    assert!(!refused.context().unwrap().is_sampled());
    drop(refused);

    let upstream = SpanContext::new(TraceId::random(), SpanId::random(), true);
    let child = span("drop child").child_of(&upstream).start();
    assert!(child.context().unwrap().is_sampled());
    drop(child);
    assert_eq!(recorder.trace(forced_context.trace_id()).len(), 1);
    assert_eq!(recorder.trace(upstream.trace_id()).len(), 1);
}

/// B3's debug flag arrives as a sampled, debug context and goes out as debug again.
#[test]
fn the_b3_debug_flag_forces_sampling_and_travels() {
    let recorder = setup();
    let mut carrier = HashMap::new();
    carrier.insert(
        "x-b3-traceid".to_owned(),
        "463ac35c9f6413ad48485a3953bb6124".to_owned(),
    );
    carrier.insert("x-b3-spanid".to_owned(), "a2fb4a1d1a96d312".to_owned());
    carrier.insert("x-b3-sampled".to_owned(), "0".to_owned());
    carrier.insert("x-b3-flags".to_owned(), "1".to_owned());
    // The default stack finds the context with B3, the last of its formats.
    let incoming = lstrace_core::propagation::extract(&carrier).unwrap();
    assert!(incoming.is_debug() && incoming.is_sampled());
    let child = span("drop, but debug").child_of(&incoming).start();
    let context = child.context().unwrap();
    assert!(context.is_sampled() && context.is_debug());
    let multi = inject(Format::B3Multi, &context);
    assert_eq!(multi.get("x-b3-flags").map(String::as_str), Some("1"));
    assert_eq!(multi.get("x-b3-sampled"), None);
    let single = inject(Format::B3Single, &context);
    assert!(single["b3"].ends_with("-d"), "{single:?}");
    assert!(extract(Format::B3Single, &single).is_debug());
    drop(child);
    assert_eq!(recorder.trace(incoming.trace_id()).len(), 1);
}
