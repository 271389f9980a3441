//! A finished span straight into protobuf bytes: the `Span` message that `encode::span`
//! builds (same fields, same limits, same omitted defaults: the tests decode both and compare
//! them), written without building it. Building it took an allocation per string and prost
//! then computed each nested length again while encoding: about 7,000 instructions per span
//! with three tags and a log, most of the reporter thread's time.
//!
//! One pass: a nested message gets one byte for its length, which is filled in when the
//! message is written; the rare message of 128 bytes or more moves right to make room for a
//! longer prefix. Measuring every length first, then writing, cost twice the work (about
//! 2,500 instructions per span against about 900).

use super::encode::{truncate, Limits};
use crate::record::{Relationship, SpanRecord};
use crate::tag::{Tag, TagValue};

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

fn varint_len(value: u64) -> usize {
    // Seven bits a byte; zero takes one byte.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

#[inline]
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[inline]
fn put_key(out: &mut Vec<u8>, field: u32, wire_type: u32) {
    put_varint(out, u64::from(field << 3 | wire_type));
}

/// A varint field; proto3 omits zero.
#[inline]
fn put_uint(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        put_key(out, field, VARINT);
        put_varint(out, value);
    }
}

/// A string field; proto3 omits the empty string.
#[inline]
fn put_str(out: &mut Vec<u8>, field: u32, s: &str) {
    if !s.is_empty() {
        put_bytes(out, field, s);
    }
}

/// A length-delimited field, written even when empty (a oneof member).
#[inline]
fn put_bytes(out: &mut Vec<u8>, field: u32, s: &str) {
    put_key(out, field, LEN);
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Starts a nested message: its key and one byte for its length. Returns where its content
/// starts, for [`close`].
#[inline]
fn open(out: &mut Vec<u8>, field: u32) -> usize {
    put_key(out, field, LEN);
    out.push(0);
    out.len()
}

/// Ends the nested message whose content starts at `start`: writes its length, moving the
/// content right when the length takes more than the one byte kept for it.
#[inline]
fn close(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    if len < 0x80 {
        out[start - 1] = len as u8;
    } else {
        widen(out, start, len);
    }
}

#[cold]
fn widen(out: &mut Vec<u8>, start: usize, len: usize) {
    let extra = varint_len(len as u64) - 1;
    out.resize(out.len() + extra, 0);
    out.copy_within(start..start + len, start + extra);
    let prefix = &mut out[start - 1..start + extra];
    let mut rest = len;
    for byte in prefix.iter_mut() {
        *byte = rest as u8 | 0x80;
        rest >>= 7;
    }
    prefix[extra] &= 0x7f;
}

/// `Timestamp { seconds, nanos }` of nanoseconds since the epoch, as `Timestamp::from_unix_nanos`.
#[inline]
fn put_timestamp(out: &mut Vec<u8>, field: u32, unix_nanos: u64) {
    let seconds = i64::try_from(unix_nanos / 1_000_000_000).unwrap_or(i64::MAX);
    let at = open(out, field);
    put_uint(out, 1, seconds as u64);
    put_uint(out, 2, unix_nanos % 1_000_000_000);
    close(out, at);
}

/// `KeyValue`: the key truncated and omitted when empty; the value always written (a oneof).
#[inline]
fn put_key_value(out: &mut Vec<u8>, field: u32, tag: &Tag, limits: &Limits) {
    let at = open(out, field);
    put_str(out, 1, truncate(&tag.key, limits.max_key_len));
    match &tag.value {
        TagValue::Str(s) => put_bytes(out, 2, truncate(s, limits.max_value_len)),
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
    close(out, at);
}

/// Writes the `Span` message of `record` as field `field` (key, length and message). Returns
/// how many logs were dropped: on the span, by the per-span limit, or here.
pub(crate) fn write(out: &mut Vec<u8>, field: u32, record: &SpanRecord, limits: &Limits) -> u64 {
    // A span with three tags and a log is about 130 bytes: one reservation, no growth.
    out.reserve(256);
    let span = open(out, field);
    let context = record.context();
    let trace_id = context.trace_id().low();
    let at = open(out, 1);
    put_uint(out, 1, trace_id);
    put_uint(out, 2, context.span_id().get());
    for (k, v) in context.baggage() {
        let entry = open(out, 3);
        put_str(out, 1, k);
        put_str(out, 2, v);
        close(out, entry);
    }
    close(out, at);
    put_str(out, 2, record.name());
    if let Some((relationship, parent_id)) = record.parent() {
        let reference = open(out, 3);
        put_uint(out, 1, relationship_number(relationship));
        let parent = open(out, 2);
        put_uint(out, 1, trace_id);
        put_uint(out, 2, parent_id);
        close(out, parent);
        close(out, reference);
    }
    put_timestamp(out, 4, record.start_unix_nanos());
    put_uint(out, 5, duration_micros(record));
    for tag in record.tags().iter() {
        put_key_value(out, 6, tag, limits);
    }
    let logs_dropped = if limits.drop_logs {
        0
    } else {
        let all = record.logs();
        let kept = all.len().min(limits.max_logs_per_span);
        for log in &all[..kept] {
            let at = open(out, 7);
            put_timestamp(out, 1, log.unix_nanos());
            for f in &log.fields {
                put_key_value(out, 2, f, limits);
            }
            close(out, at);
        }
        u64::from(record.dropped_logs()) + (all.len() - kept) as u64
    };
    close(out, span);
    logs_dropped
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
    use crate::record::{LogRecord, Logs};
    use crate::reporter::encode::{self, tests::record};
    use crate::tag::TagList;
    use prost::Message;

    /// The message's bytes (key and length prefix checked and stripped), and the logs dropped.
    fn direct(record: &SpanRecord, limits: &Limits) -> (Vec<u8>, u64) {
        let mut out = vec![0xee]; // Something before: lengths are relative to the message.
        let logs_dropped = write(&mut out, 3, record, limits);
        assert_eq!(out[1], 3 << 3 | 2, "field 3, length-delimited");
        let mut rest = &out[2..];
        let len = prost::encoding::decode_varint(&mut rest).unwrap();
        assert_eq!(
            len as usize,
            rest.len(),
            "the prefix is the message's length"
        );
        (rest.to_vec(), logs_dropped)
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
    fn long_messages_get_longer_length_prefixes() {
        // A tag of 200 bytes (its KeyValue needs a two-byte length), a span over 16 KiB (a
        // three-byte length), and a log field past 128 bytes.
        for tag_len in [100, 125, 126, 127, 128, 200, 16_400, 70_000] {
            let tags: TagList = [("payload", TagValue::from("x".repeat(tag_len)))]
                .into_iter()
                .collect();
            let logs = vec![log(9, vec![Tag::new("message", "y".repeat(tag_len / 2))])];
            let record = record("op", tags, logs);
            same_as_the_message(&record, &Limits::UNLIMITED);
            same_as_the_message(&record, &encode::tests::LIMITS);
        }
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
