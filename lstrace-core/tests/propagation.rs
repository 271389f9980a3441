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
    let trace = TraceId::from_u128(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
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
            TraceId::from_u128(0xa3ce_929d_0e0e_4736),
        ),
        (
            Format::Envoy,
            // Base64 of BinaryCarrier{basic_ctx{trace_id, span_id, sampled}}, by hand.
            &[("x-ot-span-context", "EhQJNkcODp2SzqMRtwKpC6pn8AAYAQ==")],
            TraceId::from_u128(0xa3ce_929d_0e0e_4736),
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
        TraceId::from_u128(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
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
        let context = handler.context().expect("not recorded, but a context");
        assert_eq!(context.trace_id(), parent.trace_id());
        assert_ne!(context.span_id(), parent.span_id());
        assert!(!context.is_sampled());
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
    assert_ne!(context.trace_id(), TraceId::from_u128(0));
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
                SpanContext::new(
                    TraceId::from_u128(trace),
                    SpanId::new(span).unwrap(),
                    sampled,
                )
                .with_trace_state(state),
                |ctx, (k, v)| ctx.with_baggage_item(k, v),
            )
        })
}

type Carried = (u128, u64, bool, BTreeMap<String, String>, Option<String>);

/// The part of `context` that `format` carries.
fn carried(format: Option<Format>, context: &SpanContext) -> Carried {
    let trace = context.trace_id().to_u128();
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

/// A context with `items` baggage items `k0`, `k1`, ... of one-byte values.
fn with_items(items: usize) -> SpanContext {
    // Contexts past the per-context cap (the tracer's `max_baggage_items`), as a peer that
    // does not cap its baggage sends them: what injection bounds is under test here.
    lstrace_core::__private::set_max_baggage_items(usize::MAX);
    (0..items).fold(
        SpanContext::new(TraceId::from_u128(1), SpanId::new(2).unwrap(), true),
        |ctx, i| ctx.with_baggage_item(format!("k{i}"), "v"),
    )
}

/// A header map that holds as many names as one can (32,768).
fn full_header_map() -> HeaderMap {
    let mut headers = HeaderMap::new();
    for i in 0.. {
        let name = HeaderName::from_bytes(format!("x-filler-{i}").as_bytes()).unwrap();
        if headers
            .try_insert(name, HeaderValue::from_static("1"))
            .is_err()
        {
            break;
        }
    }
    headers
}

#[test]
fn inject_into_a_full_header_map_skips_and_counts() {
    let context = with_items(3);
    let mut headers = full_header_map();
    let full = headers.clone();
    let before = propagation::fields_left_out();
    for format in FORMATS {
        format.inject(&context, &mut headers);
    }
    PropagatorStack::default().inject(&context, &mut headers);
    assert_eq!(headers, full);
    // LightStep: 3 ids and 3 items; B3: 3 + 1; W3C: traceparent and baggage; Envoy: 1; the
    // default stack: 6 + 2 + 3 (other tests may count too, never less).
    assert!(propagation::fields_left_out() - before >= 6 + 4 + 2 + 1 + 11);
}

#[test]
fn inject_writes_the_baggage_that_fits_the_bounds_and_counts_the_rest() {
    let context = with_items(2_000);
    let first: Vec<_> = context.baggage().take(MAX_BAGGAGE_ITEMS).collect();
    for format in [Format::LightStep, Format::TraceContext, Format::Envoy] {
        let before = propagation::fields_left_out();
        let mut text = HashMap::new();
        format.inject(&context, &mut text);
        let mut http = HeaderMap::new();
        format.inject(&context, &mut http);
        assert!(propagation::fields_left_out() - before >= 2 * (2_000 - MAX_BAGGAGE_ITEMS as u64));
        for back in [format.extract(&text), format.extract(&http)] {
            let mut back: Vec<_> = back
                .expect("extracts")
                .baggage()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            back.sort_unstable();
            let mut expected: Vec<_> = first
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            expected.sort_unstable();
            assert_eq!(back, expected, "{format:?}");
        }
    }
}

#[test]
fn a_five_thousand_item_envoy_carrier_decodes() {
    let context = with_items(5_000);
    let mut headers = HeaderMap::new();
    Format::Envoy.inject(&context, &mut headers);
    let carrier = headers["x-ot-span-context"].to_str().unwrap();
    assert!(
        carrier.len() <= binary::MAX_ENCODED_BYTES,
        "{}",
        carrier.len()
    );
    let back = Format::Envoy
        .extract(&headers)
        .expect("what inject writes, extract reads");
    assert_eq!(back.baggage().count(), MAX_BAGGAGE_ITEMS);
}

/// Any context: keys and values of any text (tokens, mixed case, non-ASCII, empty, longer
/// than the bounds), few items or more than the bounds take, any trace state.
fn any_context() -> impl Strategy<Value = SpanContext> {
    let key = prop_oneof![
        4 => "[a-z][a-z0-9_-]{0,15}",
        2 => "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}",
        2 => any::<String>(),
        1 => (250..260usize, "[a-z]").prop_map(|(n, c)| c.repeat(n)),
    ];
    let value = prop_oneof![
        8 => "[ -~]{0,30}",
        2 => any::<String>(),
        2 => "[a-z+ %,;=]{0,20}",
        1 => (4090..4100usize, "[a-z]").prop_map(|(n, c)| c.repeat(n)),
    ];
    let items = prop_oneof![
        prop::collection::vec((key.clone(), value.clone()), 0..8),
        prop::collection::vec((key, value), 60..120),
    ];
    let state = prop::option::of(prop_oneof![
        "[a-z]{1,8}=[a-zA-Z0-9]{1,16}",
        "[ \t]{0,2}[a-z]=[ -~]{0,20}[ \t]{0,2}",
        any::<String>(),
        (4090..4100usize).prop_map(|n| format!("a={}", "b".repeat(n))),
    ]);
    (1..=u128::MAX, 1..=u64::MAX, any::<bool>(), items, state).prop_map(
        |(trace, span, sampled, items, state)| {
            items.into_iter().fold(
                SpanContext::new(
                    TraceId::from_u128(trace),
                    SpanId::new(span).unwrap(),
                    sampled,
                )
                .with_trace_state(state),
                |ctx, (k, v)| ctx.with_baggage_item(k, v),
            )
        },
    )
}

/// What extraction gives back of an injected `context` is bounded, carries its ids, and is
/// made of its baggage items only (LightStep lower-cases keys).
fn check_read_back(format: Option<Format>, context: &SpanContext, back: &SpanContext) {
    assert_bounded(Some(back.clone()));
    let ids = |c: &SpanContext| {
        let (trace, span, sampled, _, _) = carried(format, c);
        (trace, span, sampled)
    };
    assert_eq!(ids(back), ids(context));
    for (key, value) in back.baggage() {
        assert!(
            context
                .baggage()
                .any(|(k, v)| v == value && k.eq_ignore_ascii_case(key)),
            "{key:?}={value:?} was not in the context"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// What inject writes, extract reads back whole: injecting the extracted context again
    /// writes the same carrier.
    #[test]
    fn every_format_reads_back_what_it_writes(context in any_context()) {
        for format in FORMATS {
            let mut text = HashMap::new();
            format.inject(&context, &mut text);
            let back = format.extract(&text).expect("an injected context extracts");
            check_read_back(Some(format), &context, &back);
            let mut again = HashMap::new();
            format.inject(&back, &mut again);
            prop_assert_eq!(&again, &text, "{:?}", format);

            let mut http = HeaderMap::new();
            format.inject(&context, &mut http);
            let back = format.extract(&http).expect("an injected context extracts");
            check_read_back(Some(format), &context, &back);
            let mut again = HeaderMap::new();
            format.inject(&back, &mut again);
            prop_assert_eq!(&again, &http, "{:?}", format);
        }
    }

    /// Stacks: what they read back is bounded, carries the ids, and holds the context's
    /// baggage items only, at least those that their first format reads back.
    #[test]
    fn stacks_read_back_what_they_write(context in any_context()) {
        for stack in [PropagatorStack::default(), FORMATS.into_iter().collect()] {
            let mut http = HeaderMap::new();
            stack.inject(&context, &mut http);
            let back = stack.extract(&http).expect("an injected context extracts");
            check_read_back(None, &context, &back);
            let first = Format::LightStep.extract(&http).unwrap();
            for (key, value) in first.baggage() {
                prop_assert_eq!(back.baggage_item(key), Some(value));
            }
        }
    }
}
