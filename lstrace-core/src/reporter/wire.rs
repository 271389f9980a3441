//! A finished span straight into protobuf bytes: the `Span` message that `encode::span`
//! builds (same fields, same limits, same omitted defaults: the tests decode both and compare
//! them), written without building it: building it would cost an allocation per string, and
//! prost would compute each nested length again while encoding, on the reporter thread that
//! must keep up with every span the process makes.
//!
//! One pass: a nested message gets one byte for its length, which is filled in when the
//! message is written; the rare message of 128 bytes or more moves right to make room for a
//! longer prefix. The bytes go into room made beforehand for the longest encoding the span
//! can have, through a cursor over that room, so that no length is measured twice and no
//! write checks the `Vec`'s capacity.

use super::encode::{truncate, Limits};
use crate::record::{LogRecord, Relationship, SpanRecord};
use crate::tag::{Tag, TagValue};

pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
pub(crate) const FIXED32: u8 = 5;

/// The most bytes a key (fields below 16) and a varint take.
pub(crate) const UINT_FIELD: usize = 1 + 10;
/// The most bytes a length-delimited field takes besides its content.
pub(crate) const LEN_FIELD: usize = 1 + 10;
/// The most bytes a `Timestamp` field takes.
const TIMESTAMP_FIELD: usize = LEN_FIELD + 2 * UINT_FIELD;

pub(crate) fn varint_len(value: u64) -> usize {
    // Seven bits a byte; zero takes one byte.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// The most bytes a `KeyValue` field of `tag` takes (before truncation).
fn key_value_room(tag: &Tag) -> usize {
    let value = match &tag.value {
        TagValue::Str(s) => s.len(),
        _ => 0,
    };
    LEN_FIELD + (LEN_FIELD + tag.key.len()) + (LEN_FIELD + value)
}

/// The most bytes the `Span` field of `record` takes: room for [`write`] to write in.
fn room(record: &SpanRecord, logs: &[LogRecord]) -> usize {
    let context = LEN_FIELD
        + 2 * UINT_FIELD
        + record
            .context()
            .baggage()
            .map(|(k, v)| 3 * LEN_FIELD + k.len() + v.len())
            .sum::<usize>();
    let reference = 2 * LEN_FIELD + 3 * UINT_FIELD;
    let tags: usize = record.tags().iter().map(key_value_room).sum();
    let logs: usize = logs
        .iter()
        .map(|l| LEN_FIELD + TIMESTAMP_FIELD + l.fields.iter().map(key_value_room).sum::<usize>())
        .sum();
    LEN_FIELD
        + context
        + LEN_FIELD
        + record.name().len()
        + reference
        + TIMESTAMP_FIELD
        + UINT_FIELD
        + tags
        + logs
}

/// Writes into room made beforehand; indexing checks every write against it. The OTLP
/// encoder writes through it too.
pub(crate) struct Cursor<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    #[inline(always)]
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// How many bytes were written.
    #[inline(always)]
    pub(crate) fn written(&self) -> usize {
        self.pos
    }

    #[inline(always)]
    pub(crate) fn byte(&mut self, byte: u8) {
        self.buf[self.pos] = byte;
        self.pos += 1;
    }

    #[inline(always)]
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
    }

    #[inline(always)]
    pub(crate) fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.byte(value as u8 | 0x80);
            value >>= 7;
        }
        self.byte(value as u8);
    }

    /// A key of a field below 16: one byte.
    #[inline(always)]
    pub(crate) fn key(&mut self, field: u8, wire_type: u8) {
        debug_assert!(field < 16);
        self.byte(field << 3 | wire_type);
    }

    /// A varint field; proto3 omits zero.
    #[inline(always)]
    pub(crate) fn uint(&mut self, field: u8, value: u64) {
        if value != 0 {
            self.key(field, VARINT);
            self.varint(value);
        }
    }

    /// A string field; proto3 omits the empty string.
    #[inline(always)]
    pub(crate) fn str(&mut self, field: u8, s: &str) {
        if !s.is_empty() {
            self.len_delimited(field, s);
        }
    }

    /// A length-delimited field, written even when empty (a oneof member).
    #[inline(always)]
    pub(crate) fn len_delimited(&mut self, field: u8, s: &str) {
        self.key(field, LEN);
        self.varint(s.len() as u64);
        self.bytes(s.as_bytes());
    }

    /// Starts a nested message: its key and one byte for its length. Returns where its
    /// content starts, for [`Cursor::close`].
    #[inline(always)]
    pub(crate) fn open(&mut self, field: u8) -> usize {
        self.key(field, LEN);
        self.byte(0);
        self.pos
    }

    /// Ends the nested message whose content starts at `start`: writes its length, moving
    /// the content right when the length takes more than the one byte kept for it.
    #[inline(always)]
    pub(crate) fn close(&mut self, start: usize) {
        let len = self.pos - start;
        if len < 0x80 {
            self.buf[start - 1] = len as u8;
        } else {
            self.widen(start, len);
        }
    }

    /// A fixed64 field; proto3 omits zero.
    #[inline(always)]
    pub(crate) fn fixed64(&mut self, field: u8, value: u64) {
        if value != 0 {
            self.key(field, FIXED64);
            self.bytes(&value.to_le_bytes());
        }
    }

    /// A fixed32 field of any number (its key may take two bytes); proto3 omits zero.
    #[inline(always)]
    pub(crate) fn fixed32(&mut self, field: u32, value: u32) {
        if value != 0 {
            self.varint(u64::from(field << 3 | u32::from(FIXED32)));
            self.bytes(&value.to_le_bytes());
        }
    }

    /// A bytes field; proto3 omits empty bytes.
    #[inline(always)]
    pub(crate) fn bytes_field(&mut self, field: u8, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.key(field, LEN);
            self.varint(bytes.len() as u64);
            self.bytes(bytes);
        }
    }

    #[cold]
    fn widen(&mut self, start: usize, len: usize) {
        let extra = varint_len(len as u64) - 1;
        self.buf.copy_within(start..start + len, start + extra);
        let end = self.pos + extra;
        self.pos = start - 1;
        self.varint(len as u64);
        self.pos = end;
    }

    /// `Timestamp { seconds, nanos }` of nanoseconds since the epoch, as
    /// `Timestamp::from_unix_nanos`.
    #[inline(always)]
    fn timestamp(&mut self, field: u8, unix_nanos: u64) {
        let seconds = i64::try_from(unix_nanos / 1_000_000_000).unwrap_or(i64::MAX);
        let at = self.open(field);
        self.uint(1, seconds as u64);
        self.uint(2, unix_nanos % 1_000_000_000);
        self.close(at);
    }

    /// `KeyValue`: the key truncated and omitted when empty; the value always written (a
    /// oneof).
    #[inline(always)]
    fn key_value(&mut self, field: u8, tag: &Tag, limits: &Limits) {
        let at = self.open(field);
        self.str(1, truncate(&tag.key, limits.max_key_len));
        match &tag.value {
            TagValue::Str(s) => self.len_delimited(2, truncate(s, limits.max_value_len)),
            TagValue::Int(i) => {
                self.key(3, VARINT);
                self.varint(*i as u64);
            }
            TagValue::Float(x) => {
                self.key(4, FIXED64);
                self.bytes(&x.to_le_bytes());
            }
            TagValue::Bool(b) => {
                self.key(5, VARINT);
                self.byte(u8::from(*b));
            }
        }
        self.close(at);
    }
}

/// Writes the `Span` message of `record` as field `field` (key, length and message). Returns
/// how many logs were dropped: on the span, by the per-span limit, or here.
pub(crate) fn write(out: &mut Vec<u8>, field: u8, record: &SpanRecord, limits: &Limits) -> u64 {
    let (logs, logs_dropped) = kept_logs(record, limits);
    let start = out.len();
    out.resize(start + room(record, logs), 0);
    let mut w = Cursor::new(&mut out[start..]);
    let span = w.open(field);
    let context = record.context();
    let trace_id = context.trace_id().low();
    let at = w.open(1);
    w.uint(1, trace_id);
    w.uint(2, context.span_id().get());
    for (k, v) in context.baggage() {
        let entry = w.open(3);
        w.str(1, k);
        w.str(2, v);
        w.close(entry);
    }
    w.close(at);
    w.str(2, record.name());
    if let Some((relationship, parent_id)) = record.parent() {
        let reference = w.open(3);
        w.uint(1, relationship_number(relationship));
        let parent = w.open(2);
        w.uint(1, trace_id);
        w.uint(2, parent_id);
        w.close(parent);
        w.close(reference);
    }
    w.timestamp(4, record.start_unix_nanos());
    w.uint(5, duration_micros(record));
    for tag in record.tags().iter() {
        w.key_value(6, tag, limits);
    }
    for log in logs {
        let at = w.open(7);
        w.timestamp(1, log.unix_nanos());
        for f in &log.fields {
            w.key_value(2, f, limits);
        }
        w.close(at);
    }
    w.close(span);
    let written = w.written();
    out.truncate(start + written);
    logs_dropped
}

/// The logs of `record` that are reported, and how many were dropped: on the span, by the
/// per-span limit, or here (none when logs are not reported at all, which is a choice).
pub(crate) fn kept_logs<'r>(record: &'r SpanRecord, limits: &Limits) -> (&'r [LogRecord], u64) {
    if limits.drop_logs {
        (&[], 0)
    } else {
        let all = record.logs();
        let kept = all.len().min(limits.max_logs_per_span);
        let dropped = u64::from(record.dropped_logs()) + (all.len() - kept) as u64;
        (&all[..kept], dropped)
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
    use crate::context::id::{SpanId, TraceId};
    use crate::context::SpanContext;
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
}
