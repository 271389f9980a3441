//! A finished span as protobuf bytes: the limits cut on the way ([`Limits`]), the protobuf
//! primitives both protocols' encoders use, and the collector's `Span` message written
//! straight into the report buffer, without building it: building it would cost an
//! allocation per string, and prost would compute each nested length again while encoding,
//! on the reporter thread that must keep up with every span the process makes. The tests
//! hold it to the message prost builds from the same span (`tests::span`): same fields, same
//! limits, same omitted defaults, same length.
//!
//! One pass: a nested message gets one byte for its length, which is filled in when the
//! message is written; the rare message of 128 bytes or more moves right to make room for a
//! longer prefix. The bytes go into room made beforehand for the longest encoding the span
//! can have, through a cursor over that room, so that no length is measured twice and no
//! write checks the `Vec`'s capacity.

use crate::protocol::lightstep::{key_value::Value, KeyValue};
use crate::record::{LogRecord, Relationship, SpanRecord};
use crate::tag::{Tag, TagValue};

/// What is cut from a span before it is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Longest tag or log key, in bytes.
    pub(crate) max_key_len: usize,
    /// Longest string tag or log value, in bytes.
    pub(crate) max_value_len: usize,
    /// Most logs kept per span; the rest are dropped and counted.
    pub(crate) max_logs_per_span: usize,
    /// Report no logs at all (a choice, not a loss: not counted).
    pub(crate) drop_logs: bool,
}

impl Limits {
    /// No cuts: for reporter tags, which the user sets once.
    pub(crate) const UNLIMITED: Limits = Limits {
        max_key_len: usize::MAX,
        max_value_len: usize::MAX,
        max_logs_per_span: usize::MAX,
        drop_logs: false,
    };
}

pub(crate) use crate::tag::truncate;

/// A tag or log field as a typed `KeyValue`, key and string value truncated to the limits.
pub(crate) fn key_value(key: &str, value: &TagValue, limits: &Limits) -> KeyValue {
    let value = match value {
        TagValue::Str(s) => Value::StringValue(truncate(s, limits.max_value_len).to_owned()),
        TagValue::Int(i) => Value::IntValue(*i),
        TagValue::Float(x) => Value::DoubleValue(*x),
        TagValue::Bool(b) => Value::BoolValue(*b),
    };
    KeyValue {
        key: truncate(key, limits.max_key_len).to_owned(),
        value: Some(value),
    }
}

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
        .map(|l| LEN_FIELD + TIMESTAMP_FIELD + l.fields().iter().map(key_value_room).sum::<usize>())
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
        for f in log.fields() {
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

/// Whole microseconds, truncated, as the collector's `Span` holds them.
fn duration_micros(record: &SpanRecord) -> u64 {
    u64::try_from(record.duration().as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
pub(crate) mod tests;
