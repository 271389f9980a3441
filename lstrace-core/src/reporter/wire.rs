//! A finished span straight into protobuf bytes: the `Span` message that `encode::span`
//! builds (same fields, same limits, same omitted defaults: the tests decode both and compare
//! them), written without building it. Building it took an allocation per string and prost
//! then computed each nested length again while encoding: about 7,000 instructions per span
//! with three tags and a log, most of the reporter thread's time.

use super::encode::{truncate, Limits};
use crate::record::{LogRecord, Relationship, SpanRecord};
use crate::tag::{Tag, TagValue};

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

fn varint_len(value: u64) -> usize {
    // Seven bits a byte; zero takes one byte.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

fn key_len(field: u32) -> usize {
    varint_len(u64::from(field << 3))
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire_type: u32) {
    put_varint(out, u64::from(field << 3 | wire_type));
}

/// A length-delimited field of `len` bytes, key and length prefix included.
fn len_field(field: u32, len: usize) -> usize {
    key_len(field) + varint_len(len as u64) + len
}

/// A varint field; proto3 omits zero.
fn uint_field(field: u32, value: u64) -> usize {
    if value == 0 {
        0
    } else {
        key_len(field) + varint_len(value)
    }
}

fn put_uint(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        put_key(out, field, VARINT);
        put_varint(out, value);
    }
}

/// A string field; proto3 omits the empty string.
fn str_field(field: u32, s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        len_field(field, s.len())
    }
}

fn put_str(out: &mut Vec<u8>, field: u32, s: &str) {
    if !s.is_empty() {
        put_len(out, field, s.len());
        out.extend_from_slice(s.as_bytes());
    }
}

fn put_len(out: &mut Vec<u8>, field: u32, len: usize) {
    put_key(out, field, LEN);
    put_varint(out, len as u64);
}

/// `Timestamp { seconds, nanos }` of nanoseconds since the epoch, as `Timestamp::from_unix_nanos`.
fn timestamp(unix_nanos: u64) -> (u64, u64) {
    let seconds = i64::try_from(unix_nanos / 1_000_000_000).unwrap_or(i64::MAX);
    (seconds as u64, unix_nanos % 1_000_000_000)
}

fn timestamp_len(unix_nanos: u64) -> usize {
    let (seconds, nanos) = timestamp(unix_nanos);
    uint_field(1, seconds) + uint_field(2, nanos)
}

fn put_timestamp(out: &mut Vec<u8>, field: u32, unix_nanos: u64) {
    put_len(out, field, timestamp_len(unix_nanos));
    let (seconds, nanos) = timestamp(unix_nanos);
    put_uint(out, 1, seconds);
    put_uint(out, 2, nanos);
}

/// `KeyValue`: the key truncated and omitted when empty; the value always written (a oneof).
fn key_value_len(tag: &Tag, limits: &Limits) -> usize {
    let value = match &tag.value {
        TagValue::Str(s) => len_field(2, truncate(s, limits.max_value_len).len()),
        TagValue::Int(i) => key_len(3) + varint_len(*i as u64),
        TagValue::Float(_) => key_len(4) + 8,
        TagValue::Bool(_) => key_len(5) + 1,
    };
    str_field(1, truncate(&tag.key, limits.max_key_len)) + value
}

fn put_key_value(out: &mut Vec<u8>, field: u32, tag: &Tag, limits: &Limits) {
    put_len(out, field, key_value_len(tag, limits));
    put_str(out, 1, truncate(&tag.key, limits.max_key_len));
    match &tag.value {
        TagValue::Str(s) => {
            let s = truncate(s, limits.max_value_len);
            put_len(out, 2, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        TagValue::Int(i) => {
            put_key(out, 3, VARINT);
            put_varint(out, *i as u64);
        }
        TagValue::Float(x) => {
            put_key(out, 4, FIXED64);
            out.extend_from_slice(&x.to_le_bytes());
        }
        TagValue::Bool(b) => {
            put_key(out, 5, VARINT);
            out.push(u8::from(*b));
        }
    }
}

fn log_len(log: &LogRecord, limits: &Limits) -> usize {
    len_field(1, timestamp_len(log.unix_nanos()))
        + log
            .fields
            .iter()
            .map(|f| len_field(2, key_value_len(f, limits)))
            .sum::<usize>()
}

/// `SpanContext { trace_id, span_id, baggage }`.
fn context_len<'a>(
    trace_id: u64,
    span_id: u64,
    baggage: impl Iterator<Item = (&'a str, &'a str)>,
) -> usize {
    uint_field(1, trace_id)
        + uint_field(2, span_id)
        + baggage
            .map(|(k, v)| len_field(3, str_field(1, k) + str_field(2, v)))
            .sum::<usize>()
}

/// What a span's encoding needs to know before writing: its length, and its logs.
pub(crate) struct Plan<'a> {
    /// The length of the `Span` message.
    pub(crate) len: usize,
    /// The logs reported (the first ones, up to the limit).
    logs: &'a [LogRecord],
    /// Logs dropped: on the span, by the per-span limit, or here.
    pub(crate) logs_dropped: u64,
}

/// Measures the `Span` message of `record`.
pub(crate) fn plan<'a>(record: &'a SpanRecord, limits: &Limits) -> Plan<'a> {
    let (logs, logs_dropped) = if limits.drop_logs {
        (&[][..], 0)
    } else {
        let all = record.logs();
        let kept = all.len().min(limits.max_logs_per_span);
        let cut = (all.len() - kept) as u64;
        (&all[..kept], u64::from(record.dropped_logs()) + cut)
    };
    let context = record.context();
    let trace_id = context.trace_id().low();
    let reference = record.parent().map_or(0, |(relationship, parent_id)| {
        len_field(
            3,
            uint_field(1, relationship_number(relationship))
                + len_field(2, context_len(trace_id, parent_id, std::iter::empty())),
        )
    });
    let len = len_field(
        1,
        context_len(trace_id, context.span_id().get(), context.baggage()),
    ) + str_field(2, record.name())
        + reference
        + len_field(4, timestamp_len(record.start_unix_nanos()))
        + uint_field(5, duration_micros(record))
        + record
            .tags()
            .iter()
            .map(|t| len_field(6, key_value_len(t, limits)))
            .sum::<usize>()
        + logs
            .iter()
            .map(|l| len_field(7, log_len(l, limits)))
            .sum::<usize>();
    Plan {
        len,
        logs,
        logs_dropped,
    }
}

/// Writes the `Span` message of `record` (without a key or length prefix), as planned.
pub(crate) fn write(out: &mut Vec<u8>, record: &SpanRecord, limits: &Limits, plan: &Plan<'_>) {
    let context = record.context();
    let trace_id = context.trace_id().low();
    let span_id = context.span_id().get();
    put_len(out, 1, context_len(trace_id, span_id, context.baggage()));
    put_uint(out, 1, trace_id);
    put_uint(out, 2, span_id);
    for (k, v) in context.baggage() {
        put_len(out, 3, str_field(1, k) + str_field(2, v));
        put_str(out, 1, k);
        put_str(out, 2, v);
    }
    put_str(out, 2, record.name());
    if let Some((relationship, parent_id)) = record.parent() {
        let parent_context = context_len(trace_id, parent_id, std::iter::empty());
        let number = relationship_number(relationship);
        put_len(out, 3, uint_field(1, number) + len_field(2, parent_context));
        put_uint(out, 1, number);
        put_len(out, 2, parent_context);
        put_uint(out, 1, trace_id);
        put_uint(out, 2, parent_id);
    }
    put_timestamp(out, 4, record.start_unix_nanos());
    put_uint(out, 5, duration_micros(record));
    for tag in record.tags().iter() {
        put_key_value(out, 6, tag, limits);
    }
    for log in plan.logs {
        put_len(out, 7, log_len(log, limits));
        put_timestamp(out, 1, log.unix_nanos());
        for field in &log.fields {
            put_key_value(out, 2, field, limits);
        }
    }
}

fn relationship_number(relationship: Relationship) -> u64 {
    match relationship {
        Relationship::ChildOf => 0,
        Relationship::FollowsFrom => 1,
    }
}

/// Whole microseconds, truncated, as `encode::span` reports them.
fn duration_micros(record: &SpanRecord) -> u64 {
    u64::try_from(record.duration().as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::SpanContext;
    use crate::id::{SpanId, TraceId};
    use crate::protocol;
    use crate::record::Logs;
    use crate::reporter::encode::{self, tests::record};
    use crate::tag::TagList;
    use prost::Message;

    fn direct(record: &SpanRecord, limits: &Limits) -> (Vec<u8>, u64) {
        let plan = plan(record, limits);
        let mut out = Vec::new();
        write(&mut out, record, limits, &plan);
        assert_eq!(
            out.len(),
            plan.len,
            "the planned length is the written length"
        );
        (out, plan.logs_dropped)
    }

    /// The direct encoding decodes to the message `encode::span` builds, with the same
    /// length, and drops the same logs.
    fn same_as_the_message(record: &SpanRecord, limits: &Limits) {
        let (bytes, logs_dropped) = direct(record, limits);
        let expected = encode::span(record, limits);
        let decoded = protocol::Span::decode(bytes.as_slice()).expect("valid protobuf");
        assert_eq!(decoded, expected.span);
        assert_eq!(bytes.len(), expected.span.encoded_len());
        assert_eq!(logs_dropped, expected.logs_dropped);
    }

    fn log(unix_nanos: u64, fields: Vec<Tag>) -> LogRecord {
        LogRecord { unix_nanos, fields }
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
            encode::tests::LIMITS,
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
        let tags: TagList = [("ключ", TagValue::from("ünïcödé"))].into_iter().collect();
        let record = record("op", tags, Vec::new());
        for max in 0..16 {
            let limits = Limits {
                max_key_len: max,
                max_value_len: max,
                ..Limits::UNLIMITED
            };
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
        record.logs = Some(Box::new(Logs {
            records: vec![log(3, vec![])],
            dropped: 4,
        }));
        same_as_the_message(&record, &encode::tests::LIMITS);
    }

    #[test]
    fn varint_lengths() {
        for (value, len) in [(0, 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3)] {
            assert_eq!(varint_len(value), len, "{value}");
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), len);
        }
        assert_eq!(varint_len(u64::MAX), 10);
    }
}
