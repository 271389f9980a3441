//! The encoder against the oracle: the collector's `Span` message, built with prost from the
//! same span, which is what the written bytes must decode to.

use super::*;
use crate::context::id::{SpanId, TraceId};
use crate::context::SpanContext;
use crate::protocol::lightstep::{self, Timestamp};
use crate::record::{LogList, LogRecord};
use crate::tag::TagList;
use proptest::prelude::*;
use prost::Message;

/// A finished span, built directly (unit tests cannot go through the global recorder).
pub(crate) fn record(name: &str, tags: TagList, logs: Vec<LogRecord>) -> SpanRecord {
    SpanRecord {
        context: SpanContext::new(
            TraceId(0xaaaa_bbbb_cccc_dddd_1111_2222_3333_4444),
            SpanId::new(0x55).unwrap(),
            true,
        ),
        parent: Some((Relationship::FollowsFrom, 0x44)),
        name: name.to_owned().into(),
        start_unix_nanos: 1_700_000_000_123_456_789,
        duration_nanos: 2_999_999,
        tags,
        logs: LogList::of(logs, 0),
    }
}

pub(crate) const LIMITS: Limits = Limits {
    max_key_len: 256,
    max_value_len: 1024,
    max_logs_per_span: 500,
    drop_logs: false,
};

#[test]
fn truncates_on_character_boundaries() {
    assert_eq!(truncate("héllo", 1), "h");
    assert_eq!(truncate("héllo", 2), "h"); // 'é' is two bytes
    assert_eq!(truncate("héllo", 3), "hé");
    assert_eq!(truncate("日本", 5), "日");
    assert_eq!(truncate("abc", 0), "");
    assert_eq!(truncate("abc", 10), "abc");
}

#[test]
fn encodes_ids_references_times_and_typed_tags() {
    let tags: TagList = [
        ("s", TagValue::from("text")),
        ("i", TagValue::Int(-7)),
        ("f", TagValue::Float(1.5)),
        ("b", TagValue::Bool(true)),
    ]
    .into_iter()
    .collect();
    let mut record = record("op", tags, Vec::new());
    record.context = record.context.with_baggage_item("user", "ann");
    let span = span(&record, &LIMITS).span;
    let context = span.span_context.unwrap();
    assert_eq!(context.trace_id, 0x1111_2222_3333_4444);
    assert_eq!(context.span_id, 0x55);
    assert_eq!(context.baggage.get("user").map(String::as_str), Some("ann"));
    assert_eq!(span.operation_name, "op");
    assert_eq!(span.references.len(), 1);
    assert_eq!(
        span.references[0].relationship,
        lightstep::LightStepRelationship::FollowsFrom as i32
    );
    let parent = span.references[0].span_context.as_ref().unwrap();
    assert_eq!(
        (parent.trace_id, parent.span_id),
        (0x1111_2222_3333_4444, 0x44)
    );
    let start = span.start_timestamp.unwrap();
    assert_eq!((start.seconds, start.nanos), (1_700_000_000, 123_456_789));
    assert_eq!(span.duration_micros, 2_999);
    let values: Vec<(&str, &Value)> = span
        .tags
        .iter()
        .map(|t| (t.key.as_str(), t.value.as_ref().unwrap()))
        .collect();
    assert_eq!(
        values,
        [
            ("s", &Value::StringValue("text".into())),
            ("i", &Value::IntValue(-7)),
            ("f", &Value::DoubleValue(1.5)),
            ("b", &Value::BoolValue(true)),
        ]
    );
}

#[test]
fn a_root_span_has_no_reference() {
    let mut record = record("root", TagList::new(), Vec::new());
    record.parent = None;
    assert!(span(&record, &LIMITS).span.references.is_empty());
    record.parent = Some((Relationship::ChildOf, 9));
    assert_eq!(
        span(&record, &LIMITS).span.references[0].relationship,
        lightstep::LightStepRelationship::ChildOf as i32
    );
}

#[test]
fn applies_length_and_log_limits() {
    let limits = Limits {
        max_key_len: 4,
        max_value_len: 5,
        max_logs_per_span: 2,
        drop_logs: false,
    };
    let tags: TagList = [("long-key", TagValue::from("ünïcödé"))]
        .into_iter()
        .collect();
    let logs: Vec<LogRecord> = (0..4i64)
        .map(|i| {
            LogRecord::of(
                1_000_000_000 + i as u64,
                vec![Tag::new("message", "ééééé"), Tag::new("n", i)],
            )
        })
        .collect();
    let mut record = record("op", tags, logs);
    record.logs.heap().dropped = 3;
    let encoded = span(&record, &limits);
    assert_eq!(encoded.span.tags[0].key, "long");
    assert_eq!(
        encoded.span.tags[0].value,
        Some(Value::StringValue("ünï".into()))
    );
    assert_eq!(encoded.span.logs.len(), 2);
    let first = &encoded.span.logs[0];
    assert_eq!(first.timestamp.unwrap().to_unix_nanos(), 1_000_000_000);
    assert_eq!(first.fields[0].key, "mess");
    assert_eq!(first.fields[0].value, Some(Value::StringValue("éé".into())));
    assert_eq!(first.fields[1].value, Some(Value::IntValue(0)));
    // Three dropped while recording, two more cut here.
    assert_eq!(encoded.logs_dropped, 5);

    let encoded = span(
        &record,
        &Limits {
            drop_logs: true,
            ..limits
        },
    );
    assert!(encoded.span.logs.is_empty());
    assert_eq!(encoded.logs_dropped, 0);
}

fn key_values<'a>(tags: impl Iterator<Item = &'a Tag>, limits: &Limits) -> Vec<KeyValue> {
    tags.map(|t| key_value(&t.key, &t.value, limits)).collect()
}

/// A span encoded for the collector, and how many of its logs were dropped (on the span, by
/// the per-span limit, or here, for spans recorded under a higher limit).
pub(crate) struct EncodedSpan {
    pub(crate) span: lightstep::LightStepSpan,
    pub(crate) logs_dropped: u64,
}

/// The collector's `Span` for a finished span. Reports carry the low 64 bits of the trace id.
///
/// The reporter writes spans with `wire`, straight into bytes; this builds the message they
/// decode to, which is how the tests pin down what `wire` writes.
pub(crate) fn span(record: &SpanRecord, limits: &Limits) -> EncodedSpan {
    let context = record.context();
    let trace_id = context.trace_id().low();
    let references = record
        .parent()
        .map(|(relationship, parent_id)| lightstep::Reference {
            relationship: match relationship {
                Relationship::ChildOf => lightstep::LightStepRelationship::ChildOf,
                Relationship::FollowsFrom => lightstep::LightStepRelationship::FollowsFrom,
            } as i32,
            span_context: Some(lightstep::LightStepSpanContext {
                trace_id,
                span_id: parent_id,
                baggage: Default::default(),
            }),
        })
        .into_iter()
        .collect();
    let recorded_dropped = u64::from(record.dropped_logs());
    let (logs, logs_dropped) = if limits.drop_logs {
        (Vec::new(), 0)
    } else {
        let kept = record.logs().len().min(limits.max_logs_per_span);
        let logs = record.logs()[..kept]
            .iter()
            .map(|log| lightstep::Log {
                timestamp: Some(Timestamp::from_unix_nanos(log.unix_nanos())),
                fields: key_values(log.fields().iter(), limits),
            })
            .collect();
        let cut = (record.logs().len() - kept) as u64;
        (logs, recorded_dropped + cut)
    };
    EncodedSpan {
        span: lightstep::LightStepSpan {
            span_context: Some(lightstep::LightStepSpanContext {
                trace_id,
                span_id: context.span_id().get(),
                baggage: context
                    .baggage()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            }),
            operation_name: record.name().to_owned(),
            references,
            start_timestamp: Some(Timestamp::from_unix_nanos(record.start_unix_nanos())),
            // Whole microseconds, truncated.
            duration_micros: u64::try_from(record.duration().as_micros()).unwrap_or(u64::MAX),
            tags: key_values(record.tags().iter(), limits),
            logs,
        },
        logs_dropped,
    }
}

/// A protocol's span encoder (its `wire::write`): writes `record` as the length-delimited
/// field `field` of the enclosing message, and returns how many of its logs it dropped.
pub(crate) type Encoder = fn(&mut Vec<u8>, u8, &SpanRecord, &Limits) -> u64;

/// Checks that what `encode` writes for `record` decodes to `expected` (the message built
/// the slow way, and the logs it drops), has that message's length, and drops as many logs;
/// returns the decoded message.
pub(crate) fn encodes_as<M>(
    encode: Encoder,
    field: u8,
    record: &SpanRecord,
    limits: &Limits,
    expected: (M, u64),
) -> M
where
    M: Message + Default + PartialEq + std::fmt::Debug,
{
    let (expected, expected_logs_dropped) = expected;
    let mut out = vec![0xee]; // Something before: lengths are relative to the message.
    let logs_dropped = encode(&mut out, field, record, limits);
    assert_eq!(out[1], field << 3 | 2, "field {field}, length-delimited");
    let mut bytes = &out[2..];
    let len = prost::encoding::decode_varint(&mut bytes).unwrap();
    assert_eq!(
        len as usize,
        bytes.len(),
        "the prefix is the message's length"
    );
    let decoded = M::decode(bytes).expect("valid protobuf");
    assert_eq!(decoded, expected);
    assert_eq!(bytes.len(), expected.encoded_len());
    assert_eq!(logs_dropped, expected_logs_dropped);
    decoded
}

/// The direct encoding decodes to the message `span` builds, with the same
/// length, and drops the same logs.
fn same_as_the_message(record: &SpanRecord, limits: &Limits) {
    let expected = span(record, limits);
    encodes_as(
        write,
        3,
        record,
        limits,
        (expected.span, expected.logs_dropped),
    );
}

pub(crate) fn log(unix_nanos: u64, fields: Vec<Tag>) -> LogRecord {
    LogRecord::of(unix_nanos, fields)
}

/// Spans whose parts need longer length prefixes, for both protocols' encoders: a tag of
/// 200 bytes (its key-value needs a two-byte length), a span over 16 KiB (a three-byte
/// length), a log field past 128 bytes.
pub(crate) fn long_messages() -> impl Iterator<Item = SpanRecord> {
    [100, 125, 126, 127, 128, 200, 16_400, 70_000]
        .into_iter()
        .map(|len| {
            let tags: TagList = [("payload", TagValue::from("x".repeat(len)))]
                .into_iter()
                .collect();
            let logs = vec![log(9, vec![Tag::new("message", "y".repeat(len / 2))])];
            record("op", tags, logs)
        })
}

/// A span whose keys and values (tags and log fields) are of several-byte characters, with
/// length limits that fall inside and between them, for both protocols' encoders.
pub(crate) fn truncations() -> impl Iterator<Item = (SpanRecord, Limits)> {
    let tags: TagList = [("ключ", TagValue::from("ünïcödé"))].into_iter().collect();
    let logs = vec![log(
        1,
        vec![Tag::new("event", "événement"), Tag::new("ключ", "ü")],
    )];
    let record = record("op", tags, logs);
    (0..16).map(move |max| {
        let limits = Limits {
            max_key_len: max,
            max_value_len: max,
            ..Limits::UNLIMITED
        };
        (record.clone(), limits)
    })
}

#[test]
fn every_kind_of_tag_and_log_encodes_as_the_message_does() {
    let tags: TagList = [
        ("s", TagValue::from("value")),
        ("empty", TagValue::from("")),
        ("neg", TagValue::Int(-5)),
        ("zero", TagValue::Int(0)),
        ("big", TagValue::Int(i64::MAX)),
        ("x", TagValue::Float(-1.5)),
        ("no", TagValue::Bool(false)),
        ("", TagValue::Bool(true)),
    ]
    .into_iter()
    .collect();
    let logs = vec![
        log(1_700_000_000_000_000_001, vec![Tag::new("event", "step")]),
        log(0, vec![]),
        log(5, vec![Tag::new("n", 7), Tag::new("ok", true)]),
    ];
    let record = record("GET /users/:id", tags, logs);
    for limits in [
        Limits::UNLIMITED,
        LIMITS,
        Limits {
            max_key_len: 2,
            max_value_len: 3,
            max_logs_per_span: 1,
            drop_logs: false,
        },
        Limits {
            drop_logs: true,
            ..Limits::UNLIMITED
        },
    ] {
        same_as_the_message(&record, &limits);
    }
}

#[test]
fn truncation_keeps_whole_characters() {
    for (record, limits) in truncations() {
        same_as_the_message(&record, &limits);
    }
}

#[test]
fn roots_children_baggage_and_times_encode_as_the_message_does() {
    let mut record = record("", TagList::new(), Vec::new());
    same_as_the_message(&record, &Limits::UNLIMITED);
    record.parent = None;
    record.duration_nanos = 999;
    record.start_unix_nanos = 0;
    same_as_the_message(&record, &Limits::UNLIMITED);
    record.parent = Some((Relationship::ChildOf, u64::MAX));
    record.context = SpanContext::new(TraceId(1 << 64), SpanId::new(1).unwrap(), true)
        .with_baggage_item("user", "ann");
    same_as_the_message(&record, &Limits::UNLIMITED);
    record.logs = LogList::of(vec![log(3, vec![])], 4);
    same_as_the_message(&record, &LIMITS);
}

#[test]
fn long_messages_get_longer_length_prefixes() {
    for record in long_messages() {
        same_as_the_message(&record, &Limits::UNLIMITED);
        same_as_the_message(&record, &LIMITS);
    }
}

#[test]
fn varint_lengths() {
    for (value, len) in [(0, 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3)] {
        assert_eq!(varint_len(value), len, "{value}");
        let mut out = [0; 10];
        let mut cursor = Cursor {
            buf: &mut out,
            pos: 0,
        };
        cursor.varint(value);
        assert_eq!(cursor.pos, len);
    }
    assert_eq!(varint_len(u64::MAX), 10);
}

// Arbitrary spans, for the property tests of both protocols' encoders: tags and log fields of
// every type, strings short (inline) and long (on the heap), no log, one (inline) or several.
pub(crate) fn tag_value() -> impl Strategy<Value = TagValue> {
    prop_oneof![
        // Short strings are held inline, long ones on the heap.
        ".{0,12}".prop_map(TagValue::from),
        ".{20,40}".prop_map(TagValue::from),
        any::<i64>().prop_map(TagValue::Int),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |x| !x.is_nan())
            .prop_map(TagValue::Float),
        any::<bool>().prop_map(TagValue::Bool),
        prop_oneof![
            Just("server"),
            Just("client"),
            Just("producer"),
            Just("consumer"),
            Just("error")
        ]
        .prop_map(TagValue::from_static),
    ]
}

pub(crate) fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("span.kind".to_owned()),
        Just("error".to_owned()),
        Just("event".to_owned()),
        Just("message".to_owned()),
        ".{0,10}",
        ".{20,30}",
    ]
}

pub(crate) fn fields() -> impl Strategy<Value = Vec<Tag>> {
    proptest::collection::vec((key(), tag_value()), 0..5)
        .prop_map(|fields| fields.into_iter().map(|(k, v)| Tag::new(k, v)).collect())
}

prop_compose! {
    pub(crate) fn arbitrary_record()(
        name in ".{0,20}",
        trace_id in any::<u128>(),
        span_id in 1..=u64::MAX,
        parent in proptest::option::of((any::<bool>(), any::<u64>())),
        trace_state in proptest::option::of("[a-z0-9=,]{0,30}"),
        baggage in proptest::option::of(("[a-z]{1,5}", ".{0,5}")),
        start in any::<u64>(),
        duration in any::<u64>(),
        tags in proptest::collection::vec((key(), tag_value()), 0..7),
        logs in proptest::collection::vec((any::<u64>(), fields()), 0..4),
        dropped in proptest::option::of(any::<u32>()),
    ) -> SpanRecord {
        let mut context = SpanContext::new(TraceId(trace_id), SpanId::new(span_id).unwrap(), true)
            .with_trace_state(trace_state);
        if let Some((k, v)) = baggage {
            context = context.with_baggage_item(k, v);
        }
        let tags: TagList = tags.into_iter().collect();
        let logs: Vec<LogRecord> = logs.into_iter().map(|(t, f)| log(t, f)).collect();
        SpanRecord {
            context,
            parent: parent.map(|(follows, id)| {
                (if follows { Relationship::FollowsFrom } else { Relationship::ChildOf }, id)
            }),
            name: name.into(),
            start_unix_nanos: start,
            duration_nanos: duration,
            tags,
            logs: LogList::of(logs, dropped.unwrap_or(0)),
        }
    }
}

/// No limits, the usual ones, or small arbitrary ones.
pub(crate) fn arbitrary_limits() -> impl Strategy<Value = Limits> {
    let small = (0..20usize, 0..20usize, 0..5usize, any::<bool>()).prop_map(
        |(max_key_len, max_value_len, max_logs_per_span, drop_logs)| Limits {
            max_key_len,
            max_value_len,
            max_logs_per_span,
            drop_logs,
        },
    );
    prop_oneof![Just(Limits::UNLIMITED), Just(LIMITS), small]
}

proptest! {
    #[test]
    fn arbitrary_spans_encode_as_the_message_does(
        record in arbitrary_record(),
        limits in arbitrary_limits(),
    ) {
        same_as_the_message(&record, &limits);
    }
}
