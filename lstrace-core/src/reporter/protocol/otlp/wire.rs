//! A finished span straight into the bytes of an OTLP `Span`, as the LightStep encoder
//! (`reporter::wire`) does for its protocol, through the same cursor: no message is built
//! per span. The tests build the message the bytes must decode to (`message`) and compare.
//!
//! The mapping from the OpenTracing span model (OpenTelemetry's semantic conventions, and
//! what its OpenTracing shim does):
//! - the full 128-bit trace id and the span id, big-endian (the order their hex text has);
//!   the W3C `tracestate` received from upstream as `trace_state`; flags: sampled;
//! - the parent (CHILD_OF or FOLLOWS_FROM: a span has at most one reference) as
//!   `parent_span_id`; a FOLLOWS_FROM parent is also a link, with the attribute
//!   `opentracing.ref_type = follows_from`;
//! - the `span.kind` tag (`server`, `client`, `producer`, `consumer`) as the kind, else
//!   INTERNAL; a `span.kind` of another value stays an attribute;
//! - a boolean `error` tag as the status: `true` is ERROR, with the `message` of the log
//!   whose `event` is `error` (if any) as its message; `false` leaves it unset;
//! - the other tags as attributes, typed, and the tags dropped by the per-span cap as
//!   `dropped_attributes_count`; logs as events named by their `event` field (a string), else
//!   `log`, with the other fields as attributes; logs dropped on the span or by the per-span
//!   limit as `dropped_events_count`.
//!
//! Keys and string values are truncated to the limits, on character boundaries, as in
//! LightStep reports.

use crate::protocol::otlp::{OtlpSpanKind, StatusCode};
use crate::record::{LogRecord, Relationship, SpanRecord};
use crate::reporter::wire::{
    kept_logs, truncate, Cursor, Limits, FIXED64, LEN_FIELD, UINT_FIELD, VARINT,
};
use crate::tag::{Tag, TagValue};

/// The tag whose value is the span's kind.
pub(crate) const SPAN_KIND_TAG: &str = "span.kind";
/// The tag that marks a failed span.
pub(crate) const ERROR_TAG: &str = "error";
/// The attribute of a link that stands for a FOLLOWS_FROM reference.
pub(crate) const REF_TYPE_ATTRIBUTE: &str = "opentracing.ref_type";
/// Its value.
pub(crate) const FOLLOWS_FROM: &str = "follows_from";
/// The name of an event whose log has no `event` field.
pub(crate) const DEFAULT_EVENT_NAME: &str = "log";
/// W3C trace flags: sampled (every reported span is).
pub(crate) const SAMPLED_FLAG: u32 = 0x01;

/// `Span` fields.
const TRACE_ID: u8 = 1;
const SPAN_ID: u8 = 2;
const TRACE_STATE: u8 = 3;
const PARENT_SPAN_ID: u8 = 4;
const NAME: u8 = 5;
const KIND: u8 = 6;
const START_TIME: u8 = 7;
const END_TIME: u8 = 8;
const ATTRIBUTES: u8 = 9;
const DROPPED_ATTRIBUTES: u8 = 10;
const EVENTS: u8 = 11;
const DROPPED_EVENTS: u8 = 12;
const LINKS: u8 = 13;
const STATUS: u8 = 15;
const FLAGS: u32 = 16;

/// The OTLP kind a `span.kind` value names, if it names one.
fn kind_of(value: &TagValue) -> Option<OtlpSpanKind> {
    match value.as_str()? {
        "server" => Some(OtlpSpanKind::Server),
        "client" => Some(OtlpSpanKind::Client),
        "producer" => Some(OtlpSpanKind::Producer),
        "consumer" => Some(OtlpSpanKind::Consumer),
        _ => None,
    }
}

/// The tags that become the kind or the status rather than attributes.
fn is_mapped(tag: &Tag) -> bool {
    match &*tag.key {
        SPAN_KIND_TAG => kind_of(&tag.value).is_some(),
        ERROR_TAG => matches!(tag.value, TagValue::Bool(_)),
        _ => false,
    }
}

pub(crate) fn kind(record: &SpanRecord) -> OtlpSpanKind {
    record
        .tag(SPAN_KIND_TAG)
        .and_then(kind_of)
        .unwrap_or(OtlpSpanKind::Internal)
}

/// The status code and message, when the span failed.
pub(crate) fn error_status<'r>(record: &'r SpanRecord, logs: &'r [LogRecord]) -> Option<&'r str> {
    if record.tag(ERROR_TAG) != Some(&TagValue::Bool(true)) {
        return None;
    }
    let message = logs
        .iter()
        .find(|log| log.field("event").and_then(TagValue::as_str) == Some("error"))
        .and_then(|log| log.field("message"))
        .and_then(TagValue::as_str);
    Some(message.unwrap_or(""))
}

/// The event name of a log, and the index of the field it came from (not an attribute).
pub(crate) fn event_name(log: &LogRecord) -> (&str, Option<usize>) {
    match log.fields().iter().position(|f| f.key == "event") {
        Some(at) => match &log.fields()[at].value {
            TagValue::Str(name) => (name, Some(at)),
            _ => (DEFAULT_EVENT_NAME, None),
        },
        None => (DEFAULT_EVENT_NAME, None),
    }
}

/// The attributes a span's tags give.
pub(crate) fn attributes(record: &SpanRecord) -> impl Iterator<Item = &Tag> {
    record.tags().iter().filter(|t| !is_mapped(t))
}

/// The attributes of an event.
pub(crate) fn event_attributes(log: &LogRecord) -> impl Iterator<Item = &Tag> {
    let (_, skip) = event_name(log);
    log.fields()
        .iter()
        .enumerate()
        .filter(move |(i, _)| Some(*i) != skip)
        .map(|(_, f)| f)
}

/// The most bytes a `KeyValue` field of `tag` takes (before truncation).
fn key_value_room(tag: &Tag) -> usize {
    let value = match &tag.value {
        TagValue::Str(s) => s.len(),
        _ => 0,
    };
    // KeyValue, key, AnyValue, value.
    3 * LEN_FIELD + tag.key.len() + LEN_FIELD + value
}

/// The most bytes the `Span` field of `record` takes: room for [`write`] to write in.
fn room(record: &SpanRecord, logs: &[LogRecord]) -> usize {
    let id = |len: usize| LEN_FIELD + len;
    let trace_state = record.context().trace_state().map_or(0, str::len);
    let tags: usize = record.tags().iter().map(key_value_room).sum();
    let events: usize = logs
        .iter()
        .map(|l| {
            LEN_FIELD
                + (1 + 8)
                + LEN_FIELD
                + event_name(l).0.len()
                + l.fields().iter().map(key_value_room).sum::<usize>()
        })
        .sum();
    let link = LEN_FIELD
        + id(16)
        + id(8)
        + LEN_FIELD
        + trace_state
        + 4 * LEN_FIELD
        + REF_TYPE_ATTRIBUTE.len()
        + FOLLOWS_FROM.len()
        + (1 + 4);
    let status = LEN_FIELD
        + LEN_FIELD
        + logs
            .iter()
            .filter_map(|l| l.field("message"))
            .map(|m| m.as_str().map_or(0, str::len))
            .max()
            .unwrap_or(0)
        + UINT_FIELD;
    LEN_FIELD
        + id(16)
        + id(8)
        + LEN_FIELD
        + trace_state
        + id(8)
        + LEN_FIELD
        + record.name().len()
        + UINT_FIELD
        + 2 * (1 + 8)
        + tags
        + UINT_FIELD
        + events
        + UINT_FIELD
        + link
        + status
        + (2 + 4)
}

/// `KeyValue { key, value: AnyValue { .. } }`: the key truncated and omitted when empty,
/// the value always written (a oneof).
#[inline(always)]
fn key_value(w: &mut Cursor<'_>, field: u8, key: &str, value: &TagValue, limits: &Limits) {
    let at = w.open(field);
    w.str(1, truncate(key, limits.max_key_len));
    let any = w.open(2);
    match value {
        TagValue::Str(s) => w.len_delimited(1, truncate(s, limits.max_value_len)),
        TagValue::Bool(b) => {
            w.key(2, VARINT);
            w.byte(u8::from(*b));
        }
        TagValue::Int(i) => {
            w.key(3, VARINT);
            w.varint(*i as u64);
        }
        TagValue::Float(x) => {
            w.key(4, FIXED64);
            w.bytes(&x.to_le_bytes());
        }
    }
    w.close(any);
    w.close(at);
}

/// Writes the OTLP `Span` of `record` as field `field` (key, length and message). Returns
/// how many logs were dropped: on the span, by the per-span limit, or here.
pub(crate) fn write(out: &mut Vec<u8>, field: u8, record: &SpanRecord, limits: &Limits) -> u64 {
    let (logs, logs_dropped) = kept_logs(record, limits);
    let start = out.len();
    out.resize(start + room(record, logs), 0);
    let mut w = Cursor::new(&mut out[start..]);
    let span = w.open(field);
    let context = record.context();
    let trace_id = context.trace_id().0.to_be_bytes();
    let trace_state = context.trace_state().unwrap_or("");
    w.bytes_field(TRACE_ID, &trace_id);
    w.bytes_field(SPAN_ID, &context.span_id().get().to_be_bytes());
    w.str(TRACE_STATE, trace_state);
    if let Some((_, parent)) = record.parent() {
        w.bytes_field(PARENT_SPAN_ID, &parent.to_be_bytes());
    }
    w.str(NAME, record.name());
    w.uint(KIND, kind(record) as u64);
    let start_nanos = record.start_unix_nanos();
    w.fixed64(START_TIME, start_nanos);
    w.fixed64(END_TIME, end_unix_nanos(record));
    for tag in attributes(record) {
        key_value(&mut w, ATTRIBUTES, &tag.key, &tag.value, limits);
    }
    w.uint(DROPPED_ATTRIBUTES, u64::from(record.dropped_tags()));
    for log in logs {
        let at = w.open(EVENTS);
        w.fixed64(1, log.unix_nanos());
        w.str(2, truncate(event_name(log).0, limits.max_value_len));
        for f in event_attributes(log) {
            key_value(&mut w, 3, &f.key, &f.value, limits);
        }
        w.close(at);
    }
    w.uint(DROPPED_EVENTS, logs_dropped.min(u64::from(u32::MAX)));
    if let Some((Relationship::FollowsFrom, parent)) = record.parent() {
        let at = w.open(LINKS);
        w.bytes_field(1, &trace_id);
        w.bytes_field(2, &parent.to_be_bytes());
        w.str(3, trace_state);
        key_value(
            &mut w,
            4,
            REF_TYPE_ATTRIBUTE,
            &TagValue::from_static(FOLLOWS_FROM),
            &Limits::UNLIMITED,
        );
        w.fixed32(6, SAMPLED_FLAG);
        w.close(at);
    }
    if let Some(message) = error_status(record, logs) {
        let at = w.open(STATUS);
        w.str(2, truncate(message, limits.max_value_len));
        w.uint(3, StatusCode::Error as u64);
        w.close(at);
    }
    w.fixed32(FLAGS, SAMPLED_FLAG);
    w.close(span);
    let written = w.written();
    out.truncate(start + written);
    logs_dropped
}

/// The end time: the start plus the duration measured on the monotonic clock.
pub(crate) fn end_unix_nanos(record: &SpanRecord) -> u64 {
    let duration = u64::try_from(record.duration().as_nanos()).unwrap_or(u64::MAX);
    record.start_unix_nanos().saturating_add(duration)
}

/// The `Span` message that [`write`]'s bytes decode to, built the slow way: the reference
/// the tests hold the fast encoder to, and the mapping spelled out.
#[cfg(test)]
pub(crate) fn message(
    record: &SpanRecord,
    limits: &Limits,
) -> (crate::protocol::otlp::OtlpSpan, u64) {
    use crate::protocol::otlp::{
        any_value::Value, AnyValue, KeyValue, Link, OtlpEvent, OtlpSpan, Status,
    };
    let kv = |key: &str, value: &TagValue, limits: &Limits| KeyValue {
        key: truncate(key, limits.max_key_len).to_owned(),
        value: Some(AnyValue {
            value: Some(match value {
                TagValue::Str(s) => Value::StringValue(truncate(s, limits.max_value_len).into()),
                TagValue::Int(i) => Value::IntValue(*i),
                TagValue::Float(x) => Value::DoubleValue(*x),
                TagValue::Bool(b) => Value::BoolValue(*b),
            }),
        }),
    };
    let (logs, logs_dropped) = kept_logs(record, limits);
    let context = record.context();
    let trace_id = context.trace_id().0.to_be_bytes().to_vec();
    let trace_state = context.trace_state().unwrap_or("").to_owned();
    let span = OtlpSpan {
        trace_id: trace_id.clone(),
        span_id: context.span_id().get().to_be_bytes().to_vec(),
        trace_state: trace_state.clone(),
        parent_span_id: record
            .parent_id()
            .map_or(Vec::new(), |p| p.to_be_bytes().to_vec()),
        name: record.name().to_owned(),
        kind: kind(record) as i32,
        start_time_unix_nano: record.start_unix_nanos(),
        end_time_unix_nano: end_unix_nanos(record),
        attributes: attributes(record)
            .map(|t| kv(&t.key, &t.value, limits))
            .collect(),
        dropped_attributes_count: record.dropped_tags(),
        events: logs
            .iter()
            .map(|log| OtlpEvent {
                time_unix_nano: log.unix_nanos(),
                name: truncate(event_name(log).0, limits.max_value_len).to_owned(),
                attributes: event_attributes(log)
                    .map(|f| kv(&f.key, &f.value, limits))
                    .collect(),
                dropped_attributes_count: 0,
            })
            .collect(),
        dropped_events_count: u32::try_from(logs_dropped).unwrap_or(u32::MAX),
        links: match record.parent() {
            Some((Relationship::FollowsFrom, parent)) => vec![Link {
                trace_id,
                span_id: parent.to_be_bytes().to_vec(),
                trace_state,
                attributes: vec![kv(
                    REF_TYPE_ATTRIBUTE,
                    &TagValue::from_static(FOLLOWS_FROM),
                    &Limits::UNLIMITED,
                )],
                dropped_attributes_count: 0,
                flags: SAMPLED_FLAG,
            }],
            _ => Vec::new(),
        },
        dropped_links_count: 0,
        status: error_status(record, logs).map(|message| Status {
            message: truncate(message, limits.max_value_len).to_owned(),
            code: StatusCode::Error as i32,
        }),
        flags: SAMPLED_FLAG,
    };
    (span, logs_dropped)
}

#[cfg(test)]
mod tests;
