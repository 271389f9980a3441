//! Propagation formats: golden vectors across formats, traces continued from extracted
//! contexts, and fuzzing (arbitrary carriers never panic; every format round-trips).

use http::{HeaderMap, HeaderName, HeaderValue};
use lstrace_core::propagation::{
    self, binary, Extractor, Format, Propagator, PropagatorStack, MAX_BAGGAGE_BYTES,
    MAX_BAGGAGE_ITEMS, MAX_BAGGAGE_KEY_BYTES, MAX_BAGGAGE_VALUE_BYTES, MAX_TRACE_STATE_BYTES,
};
use lstrace_core::testing::TestRecorder;
use lstrace_core::{span, SpanContext, SpanId, TraceId};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};

const FORMATS: [Format; 5] = [
    Format::LightStep,
    Format::B3Multi,
    Format::B3Single,
    Format::TraceContext,
    Format::Envoy,
];

fn map(entries: &[(&str, &str)]) -> HashMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn headers(entries: &[(&str, &str)]) -> HeaderMap {
    entries
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect()
}

/// Header names and values.
type Entries = &'static [(&'static str, &'static str)];

/// The same context, as each format writes it (W3C specification example ids).
#[test]
fn golden_vectors_agree_across_formats() {
    let trace = TraceId(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
    let span_id = 0x00f0_67aa_0ba9_02b7;
    let cases: [(Format, Entries, TraceId); 6] = [
        (
            Format::TraceContext,
            &[(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )],
            trace,
        ),
        (
            Format::B3Multi,
            &[
                ("X-B3-TraceId", "4bf92f3577b34da6a3ce929d0e0e4736"),
                ("X-B3-SpanId", "00f067aa0ba902b7"),
                ("X-B3-Sampled", "1"),
            ],
            trace,
        ),
        (
            Format::B3Single,
            &[("b3", "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1")],
            trace,
        ),
        (
            Format::LightStep,
            &[
                ("Ot-Tracer-Traceid", "4bf92f3577b34da6a3ce929d0e0e4736"),
                ("Ot-Tracer-Spanid", "f067aa0ba902b7"),
                ("Ot-Tracer-Sampled", "true"),
            ],
            trace,
        ),
        (
            Format::LightStep,
            &[
                ("ot-tracer-traceid", "A3CE929D0E0E4736"),
                ("ot-tracer-spanid", "00F067AA0BA902B7"),
            ],
            TraceId(0xa3ce_929d_0e0e_4736),
        ),
        (
            Format::Envoy,
            // Base64 of BinaryCarrier{basic_ctx{trace_id, span_id, sampled}}, by hand.
            &[("x-ot-span-context", "EhQJNkcODp2SzqMRtwKpC6pn8AAYAQ==")],
            TraceId(0xa3ce_929d_0e0e_4736),
        ),
    ];
    for (format, entries, trace_id) in cases {
        let expected = SpanContext::new(trace_id, SpanId::new(span_id).unwrap(), true);
        assert_eq!(
            format.extract(&map(entries)),
            Some(expected.clone()),
            "{format:?}"
        );
        assert_eq!(
            format.extract(&headers(entries)),
            Some(expected.clone()),
            "{format:?}"
        );
        assert_eq!(
            PropagatorStack::empty()
                .with(format)
                .extract(&headers(entries)),
            Some(expected),
            "{format:?}"
        );
    }
}

#[test]
fn an_extracted_context_continues_its_trace() {
    let recorder = TestRecorder::install();
    let incoming = headers(&[
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("tracestate", "congo=t61rcWkgMzE"),
        ("baggage", "user=ann"),
    ]);
    let parent = propagation::extract(&incoming).expect("a valid traceparent");
    let mut outgoing = HeaderMap::new();
    {
        let handler = span("handle").child_of(&parent).start();
        let _child = span("load").start();
        propagation::inject(&lstrace_core::current().unwrap(), &mut outgoing);
        drop(_child);
        drop(handler);
    }
    let spans = recorder.trace(parent.trace_id());
    assert_eq!(spans.len(), 2);
    let handle = spans.iter().find(|s| s.name() == "handle").unwrap();
    let load = spans.iter().find(|s| s.name() == "load").unwrap();
    assert_eq!(handle.parent_id(), Some(0x00f0_67aa_0ba9_02b7));
    assert_eq!(load.parent_id(), Some(handle.context().span_id().get()));
    assert_eq!(
        load.context().trace_id(),
        TraceId(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
        "the child keeps all 128 bits"
    );
    assert_eq!(
        outgoing["traceparent"],
        format!(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
            load.context().span_id()
        )
    );
    assert_eq!(outgoing["tracestate"], "congo=t61rcWkgMzE");
    assert_eq!(outgoing["ot-baggage-user"], "ann");
    assert_eq!(outgoing["ot-tracer-traceid"], "a3ce929d0e0e4736");
    assert_eq!(outgoing["x-b3-traceid"], "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[test]
fn a_caller_that_says_not_sampled_is_obeyed() {
    let recorder = TestRecorder::install();
    for carrier in [
        // A trace id of its own: tests run in parallel and record into one recorder.
        map(&[(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
        )]),
        map(&[("x-b3-sampled", "0")]),
        map(&[
            ("ot-tracer-traceid", "5e1d"),
            ("ot-tracer-spanid", "2"),
            ("ot-tracer-sampled", "0"),
        ]),
    ] {
        let parent = propagation::extract(&carrier).expect("a decision");
        assert!(!parent.is_sampled());
        let handler = span("handle").child_of(&parent).start();
        assert_eq!(handler.context(), None, "not recorded");
        drop(handler);
        // Calls made in its scope pass the decision on.
        let mut outgoing = HashMap::new();
        parent.in_scope(|| {
            let _inner = span("inner").start();
            propagation::inject(&lstrace_core::current().unwrap(), &mut outgoing);
        });
        assert_eq!(outgoing["ot-tracer-sampled"], "false");
        assert!(outgoing["traceparent"].ends_with("-00"));
        assert!(recorder.trace(parent.trace_id()).is_empty());
    }
    let carrier = map(&[("b3", "0")]);
    let denied = PropagatorStack::empty()
        .with(Format::B3Single)
        .extract(&carrier);
    assert!(!denied.unwrap().is_sampled());
}

fn case_mixed(name: &'static str) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<bool>(), name.len()).prop_map(move |upper| {
        name.chars()
            .zip(upper)
            .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
            .collect()
    })
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "ot-tracer-traceid",
            "ot-tracer-spanid",
            "ot-tracer-sampled",
            "x-b3-traceid",
            "x-b3-spanid",
            "x-b3-sampled",
            "x-b3-flags",
            "b3",
            "traceparent",
            "tracestate",
            "baggage",
            "x-ot-span-context",
        ])
        .prop_flat_map(case_mixed),
        "ot-baggage-[a-zA-Z0-9_-]{0,300}",
        "[a-zA-Z0-9-]{1,20}",
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9a-fA-F]{0,40}",
        "[0-9]{1,2}",
        "(true|false|TRUE|d|0|1)",
        "[0-9a-fA-F]{0,3}-[0-9a-fA-F]{0,33}-[0-9a-fA-F]{0,17}-[0-9a-fA-F]{0,3}(-.{0,5})?",
        "[0-9a-f]{1,32}-[0-9a-f]{1,16}(-[01d])?(-[0-9a-fA-F]{0,17})?(-.)?",
        "[A-Za-z0-9+/]{0,120}={0,3}",
        "([a-zA-Z%]{1,6}=[ a-zA-Z0-9%;,=]{0,20},?){0,6}",
        "[ -~]{0,600}",
    ]
}

/// A carrier made of known and unknown headers, with values near and far from valid.
fn text_map() -> impl Strategy<Value = HashMap<String, String>> {
    prop::collection::hash_map(header_name(), header_value(), 0..16)
}

fn header_map() -> impl Strategy<Value = HeaderMap> {
    prop::collection::vec(
        (
            header_name(),
            prop_oneof![
                header_value().prop_map(String::into_bytes),
                prop::collection::vec(any::<u8>(), 0..40),
            ],
        ),
        0..16,
    )
    .prop_map(|entries| {
        let mut headers = HeaderMap::new();
        for (name, value) in entries {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(&value),
            ) {
                headers.append(name, value);
            }
        }
        headers
    })
}

/// What every extracted context must satisfy, whatever the carrier held.
fn assert_bounded(context: Option<SpanContext>) {
    let Some(context) = context else { return };
    assert_ne!(context.trace_id(), TraceId(0));
    let items: Vec<_> = context.baggage().collect();
    assert!(items.len() <= MAX_BAGGAGE_ITEMS);
    assert!(items.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() <= MAX_BAGGAGE_BYTES);
    assert!(items
        .iter()
        .all(|(k, v)| k.len() <= MAX_BAGGAGE_KEY_BYTES && v.len() <= MAX_BAGGAGE_VALUE_BYTES));
    assert!(context.trace_state().map_or(0, str::len) <= MAX_TRACE_STATE_BYTES);
}

fn extract_everywhere(carrier: &dyn Extractor) {
    for format in FORMATS {
        assert_bounded(format.extract(carrier));
    }
    assert_bounded(PropagatorStack::default().extract(carrier));
    assert_bounded(
        FORMATS
            .into_iter()
            .collect::<PropagatorStack>()
            .extract(carrier),
    );
}

/// A context of the shape every format can carry some of.
fn context() -> impl Strategy<Value = SpanContext> {
    (
        1..=u128::MAX,
        1..=u64::MAX,
        any::<bool>(),
        prop::collection::btree_map("[a-z][a-z0-9_-]{0,15}", "[ -~]{0,30}", 0..5),
        prop::option::of("[a-z]{1,8}=[a-zA-Z0-9]{1,16}(,[a-z]{1,8}=[a-zA-Z0-9]{1,16}){0,3}"),
    )
        .prop_map(|(trace, span, sampled, baggage, state)| {
            baggage.into_iter().fold(
                SpanContext::new(TraceId(trace), SpanId::new(span).unwrap(), sampled)
                    .with_trace_state(state),
                |ctx, (k, v)| ctx.with_baggage_item(k, v),
            )
        })
}

type Carried = (u128, u64, bool, BTreeMap<String, String>, Option<String>);

/// The part of `context` that `format` carries.
fn carried(format: Option<Format>, context: &SpanContext) -> Carried {
    let trace = context.trace_id().0;
    let baggage = || {
        context
            .baggage()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    let state = context.trace_state().map(str::to_owned);
    let (trace, baggage, state) = match format {
        Some(Format::LightStep | Format::Envoy) => (trace as u64 as u128, baggage(), None),
        Some(Format::B3Multi | Format::B3Single) => (trace, BTreeMap::new(), None),
        // W3C trace context carries everything, and so does the default stack.
        _ => (trace, baggage(), state),
    };
    (
        trace,
        context.span_id().get(),
        context.is_sampled(),
        baggage,
        state,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_text_maps_never_panic(carrier in text_map()) {
        extract_everywhere(&carrier);
    }

    #[test]
    fn arbitrary_header_maps_never_panic(carrier in header_map()) {
        extract_everywhere(&carrier);
    }

    #[test]
    fn arbitrary_binary_carriers_never_panic(
        text in prop_oneof![any::<String>(), "[A-Za-z0-9+/]{0,200}={0,2}"]
    ) {
        assert_bounded(binary::decode(&text));
    }

    #[test]
    fn every_format_round_trips(context in context()) {
        for format in FORMATS {
            let mut text = HashMap::new();
            format.inject(&context, &mut text);
            let mut http = HeaderMap::new();
            format.inject(&context, &mut http);
            for back in [format.extract(&text), format.extract(&http)] {
                let back = back.expect("an injected context extracts");
                prop_assert_eq!(carried(Some(format), &back), carried(Some(format), &context));
            }
        }
    }

    #[test]
    fn the_default_stack_round_trips_everything(context in context()) {
        let stack = PropagatorStack::default();
        let mut http = HeaderMap::new();
        stack.inject(&context, &mut http);
        let back = stack.extract(&http).expect("an injected context extracts");
        prop_assert_eq!(carried(None, &back), carried(None, &context));
        let back = binary::decode(&binary::encode(&context)).unwrap();
        prop_assert_eq!(carried(Some(Format::Envoy), &back), carried(Some(Format::Envoy), &context));
    }
}
