use super::*;
use crate::context::id::{SpanId, TraceId};
use crate::context::SpanContext;
use crate::protocol::otlp::{any_value::Value, OtlpSpan};
use crate::reporter::wire::tests::{
    arbitrary_limits, arbitrary_record, encodes_as, log, long_messages, record, truncations, LIMITS,
};
use crate::tag::TagList;
use proptest::prelude::*;

/// The fast encoding decodes to the reference message, has its length, drops the same logs.
fn same_as_the_message(record: &SpanRecord, limits: &Limits) -> OtlpSpan {
    encodes_as(write, 2, record, limits, message(record, limits))
}

fn string(value: &str) -> Option<crate::protocol::otlp::AnyValue> {
    Some(crate::protocol::otlp::AnyValue {
        value: Some(Value::StringValue(value.into())),
    })
}

fn attribute<'a>(
    attributes: &'a [crate::protocol::otlp::KeyValue],
    key: &str,
) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

#[test]
fn ids_are_128_and_64_bits_big_endian_and_times_are_nanoseconds() {
    let mut r = record("op", TagList::new(), Vec::new());
    r.context = SpanContext::new(
        TraceId(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210),
        SpanId::new(0x1122_3344_5566_7788).unwrap(),
        true,
    );
    r.parent = Some((Relationship::ChildOf, 0x0a0b_0c0d_0e0f_1011));
    let span = same_as_the_message(&r, &LIMITS);
    assert_eq!(
        span.trace_id,
        [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54,
            0x32, 0x10
        ]
    );
    assert_eq!(
        span.span_id,
        [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]
    );
    assert_eq!(
        span.parent_span_id,
        [0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11]
    );
    assert!(span.links.is_empty(), "CHILD_OF is the parent only");
    // `record` starts at 1_700_000_000.123456789 s and lasts 2_999_999 ns.
    assert_eq!(span.start_time_unix_nano, 1_700_000_000_123_456_789);
    assert_eq!(span.end_time_unix_nano, 1_700_000_000_126_456_788);
    assert_eq!(span.name, "op");
    assert_eq!(span.flags, 1, "sampled");
    assert_eq!(span.trace_state, "");
    r.parent = None;
    assert!(same_as_the_message(&r, &LIMITS).parent_span_id.is_empty());
}

#[test]
fn follows_from_is_the_parent_and_a_link_and_trace_state_passes_through() {
    let mut r = record("consume", TagList::new(), Vec::new());
    r.context = r
        .context
        .clone()
        .with_trace_state(Some("vendor=abc,x=1".into()));
    let span = same_as_the_message(&r, &LIMITS);
    assert_eq!(span.trace_state, "vendor=abc,x=1");
    assert_eq!(span.parent_span_id, 0x44u64.to_be_bytes());
    assert_eq!(span.links.len(), 1);
    let link = &span.links[0];
    assert_eq!(link.trace_id, span.trace_id);
    assert_eq!(link.span_id, 0x44u64.to_be_bytes());
    assert_eq!(link.trace_state, "vendor=abc,x=1");
    assert_eq!(
        attribute(&link.attributes, "opentracing.ref_type"),
        Some(&Value::StringValue("follows_from".into()))
    );
}

#[test]
fn tags_are_typed_attributes_and_kind_and_error_are_mapped() {
    let tags: TagList = [
        ("s", TagValue::from("text")),
        ("i", TagValue::Int(-7)),
        ("f", TagValue::Float(1.5)),
        ("b", TagValue::Bool(false)),
        ("span.kind", TagValue::from("client")),
        ("error", TagValue::Bool(true)),
    ]
    .into_iter()
    .collect();
    let logs = vec![
        log(5, vec![Tag::new("event", "retry"), Tag::new("attempt", 2)]),
        log(
            6,
            vec![
                Tag::new("event", "error"),
                Tag::new("message", "connection refused"),
            ],
        ),
    ];
    let span = same_as_the_message(&record("call", tags, logs), &LIMITS);
    let attributes: Vec<(&str, &Value)> = span
        .attributes
        .iter()
        .map(|kv| {
            (
                kv.key.as_str(),
                kv.value.as_ref().unwrap().value.as_ref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        attributes,
        [
            ("s", &Value::StringValue("text".into())),
            ("i", &Value::IntValue(-7)),
            ("f", &Value::DoubleValue(1.5)),
            ("b", &Value::BoolValue(false)),
        ]
    );
    assert_eq!(span.kind, OtlpSpanKind::Client as i32);
    let status = span.status.unwrap();
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(status.message, "connection refused");
}

#[test]
fn every_kind_and_the_default() {
    for (value, kind) in [
        (Some(TagValue::from("server")), OtlpSpanKind::Server),
        (Some(TagValue::from("client")), OtlpSpanKind::Client),
        (Some(TagValue::from("producer")), OtlpSpanKind::Producer),
        (Some(TagValue::from("consumer")), OtlpSpanKind::Consumer),
        (Some(TagValue::from("sideways")), OtlpSpanKind::Internal),
        (Some(TagValue::Int(2)), OtlpSpanKind::Internal),
        (None, OtlpSpanKind::Internal),
    ] {
        let tags: TagList = value
            .clone()
            .map(|v| ("span.kind", v))
            .into_iter()
            .collect();
        let span = same_as_the_message(&record("op", tags, Vec::new()), &LIMITS);
        assert_eq!(span.kind, kind as i32, "{value:?}");
        // A value that names no kind is kept as an attribute; one that does is not.
        let kept = attribute(&span.attributes, "span.kind").is_some();
        assert_eq!(
            kept,
            value.is_some() && kind == OtlpSpanKind::Internal,
            "{value:?}"
        );
    }
}

#[test]
fn error_status_needs_a_true_boolean() {
    let status = |error: TagValue, logs: Vec<LogRecord>| {
        let tags: TagList = [("error", error)].into_iter().collect();
        same_as_the_message(&record("op", tags, logs), &LIMITS).status
    };
    assert_eq!(status(TagValue::Bool(false), Vec::new()), None);
    let unset = status(TagValue::from("true"), Vec::new());
    assert_eq!(unset, None, "a string is an attribute, not a status");
    let bare = status(TagValue::Bool(true), Vec::new()).unwrap();
    assert_eq!((bare.code, bare.message.as_str()), (2, ""));
    // The message comes from the error log, not from another log's message.
    let logs = vec![
        log(
            1,
            vec![Tag::new("event", "info"), Tag::new("message", "fine")],
        ),
        log(2, vec![Tag::new("message", "no event")]),
    ];
    assert_eq!(status(TagValue::Bool(true), logs).unwrap().message, "");
}

#[test]
fn logs_are_events_and_their_drops_are_counted() {
    let logs = vec![
        log(
            10,
            vec![Tag::new("event", "cache_miss"), Tag::new("key", "u:7")],
        ),
        log(11, vec![Tag::new("message", "no event field")]),
        log(12, vec![Tag::new("event", 5), Tag::new("n", 1.5)]),
        log(13, Vec::new()),
    ];
    let mut r = record("op", TagList::new(), logs);
    r.logs.heap().dropped = 2;
    let span = same_as_the_message(&r, &LIMITS);
    let names: Vec<&str> = span.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["cache_miss", "log", "log", "log"]);
    assert_eq!(span.events[0].time_unix_nano, 10);
    assert_eq!(span.events[0].attributes.len(), 1);
    assert_eq!(span.events[0].attributes[0].key, "key");
    assert_eq!(span.events[0].attributes[0].value, string("u:7"));
    assert_eq!(span.events[1].attributes[0].key, "message");
    // A non-string `event` is an attribute like any other field.
    assert_eq!(
        attribute(&span.events[2].attributes, "event"),
        Some(&Value::IntValue(5))
    );
    assert_eq!(span.dropped_events_count, 2);
    // Two more over the per-span limit.
    let limits = Limits {
        max_logs_per_span: 2,
        ..LIMITS
    };
    let span = same_as_the_message(&r, &limits);
    assert_eq!(span.events.len(), 2);
    assert_eq!(span.dropped_events_count, 4);
    // No logs at all is a choice, not a drop.
    let span = same_as_the_message(
        &r,
        &Limits {
            drop_logs: true,
            ..LIMITS
        },
    );
    assert!(span.events.is_empty());
    assert_eq!(span.dropped_events_count, 0);
    assert_eq!(span.dropped_attributes_count, 0);
    assert_eq!(span.dropped_links_count, 0);
}

#[test]
fn tags_over_the_per_span_cap_are_counted_as_dropped_attributes() {
    let mut tags = TagList::new();
    for i in 0..5 {
        tags.set_within(format!("k{i}").into(), TagValue::Int(i), 3);
    }
    assert_eq!(tags.dropped(), 2);
    let span = same_as_the_message(&record("op", tags, Vec::new()), &LIMITS);
    assert_eq!(span.attributes.len(), 3);
    assert_eq!(span.dropped_attributes_count, 2);
}

#[test]
fn truncation_keeps_whole_characters() {
    for (record, limits) in truncations() {
        same_as_the_message(&record, &limits);
    }
}

#[test]
fn long_messages_get_longer_length_prefixes() {
    for record in long_messages() {
        same_as_the_message(&record, &Limits::UNLIMITED);
        same_as_the_message(&record, &LIMITS);
    }
}

proptest! {
    #[test]
    fn arbitrary_spans_decode_to_the_reference_message(
        record in arbitrary_record(),
        limits in arbitrary_limits(),
    ) {
        same_as_the_message(&record, &limits);
    }
}
