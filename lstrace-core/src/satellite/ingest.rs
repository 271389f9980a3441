//! Reading a report on arrival without decoding its spans.
//!
//! Decoding every span into owned strings (prost, an allocation per string) would take the
//! core that the traced program and its reporter need, for spans nobody may look at. On
//! arrival the satellite walks the whole report against the schema without building it,
//! adding up what decoding it would hold in memory, then decodes its header (reporter, auth,
//! metrics: what the answer depends on); the spans are decoded when someone asks for them.
//!
//! The walk judges every input as prost does: what it accepts, `ReportRequest::decode`
//! accepts, and what it refuses, prost refuses (the tests fuzz both on arbitrary and on
//! damaged reports, and on valid ones with unknown, malformed and deeply nested fields
//! added at every level). Its unknown fields are skipped as prost skips them, recursion
//! limit included. When the walk refuses a report, prost decides (it refuses it too, and
//! its error message is the answer's); a report that would hold more than the limit decoded
//! is refused before anything is decoded.

use crate::protocol::lightstep::{
    KeyValue, LightStepSpan, Log, MetricsSample, Reference, ReportRequest,
};
use prost::encoding::{check_wire_type, decode_key, skip_field};
use prost::encoding::{DecodeContext, WireType};
use prost::{DecodeError, Message};
use std::mem::size_of;

pub(super) mod otlp;

/// The field number of `ReportRequest.spans`.
const SPANS_FIELD: u32 = 3;

/// prost's recursion limit: how deep messages and groups may nest below the report.
const RECURSION_LIMIT: u32 = 100;

/// The walk refuses the input: prost says why.
#[derive(Debug)]
struct Refused;

impl From<DecodeError> for Refused {
    fn from(_: DecodeError) -> Self {
        Refused
    }
}

/// A report read on arrival: every field but the spans, and how many spans it carries.
#[derive(Debug, PartialEq)]
pub(super) struct Ingested {
    /// The report without its spans.
    pub(super) header: ReportRequest,
    /// How many spans it carries.
    pub(super) spans: usize,
    /// The memory it holds once decoded (as the walk works it out).
    pub(super) decoded_bytes: usize,
}

/// Why a body is not taken.
#[derive(Debug, PartialEq)]
pub(super) enum Refusal {
    /// It is not a `ReportRequest`: prost's error.
    Invalid(DecodeError),
    /// Decoded, it would hold more than the limit (in bytes), at least `decoded_bytes`.
    TooLarge {
        /// What the part of the report walked so far would hold decoded.
        decoded_bytes: usize,
        /// The limit.
        limit: usize,
    },
}

/// Reads a report body: its header and span count, or why it is not taken. A report that
/// would hold more than `max_decoded_bytes` of memory decoded is refused.
pub(super) fn ingest(body: &[u8], max_decoded_bytes: usize) -> Result<Ingested, Refusal> {
    let walked = Walk::body(body, max_decoded_bytes, Walk::report)?;
    match walked.spans {
        Some(spans) => Ok(Ingested {
            header: header(body).map_err(Refusal::Invalid)?,
            spans,
            decoded_bytes: walked.decoded_bytes,
        }),
        // prost refuses it no further than the walk went, which held no more than the limit.
        None => {
            let mut full = ReportRequest::decode(body).map_err(Refusal::Invalid)?;
            let spans = std::mem::take(&mut full.spans).len();
            Ok(Ingested {
                header: full,
                spans,
                decoded_bytes: walked.decoded_bytes,
            })
        }
    }
}

/// Decodes a body that [`ingest`] accepted.
pub(super) fn decode(body: &[u8]) -> ReportRequest {
    // `ingest` accepted it, so prost does too; an empty report would only hide a bug that
    // the tests of this module exist to catch.
    ReportRequest::decode(body).unwrap_or_default()
}

/// Every field of a report but its spans, which are skipped.
fn header(mut body: &[u8]) -> Result<ReportRequest, DecodeError> {
    let mut header = ReportRequest::default();
    while !body.is_empty() {
        let (tag, wire_type) = decode_key(&mut body)?;
        if tag == SPANS_FIELD {
            skip_field(wire_type, tag, &mut body, DecodeContext::default())?;
        } else {
            header.merge_field(tag, wire_type, &mut body, DecodeContext::default())?;
        }
    }
    Ok(header)
}

/// Walks a report (or an OTLP export, see [`otlp`]) against its schema without decoding it,
/// adding up what decoding it would hold. One walker per message, each a `match` of its
/// field numbers, on the shared [`Walk::fields`].
struct Walk {
    /// The heap bytes that the values walked so far hold once decoded by prost: each `Vec` at
    /// the capacity that pushing its elements one at a time leaves it with, each string at
    /// the capacity it is decoded into, each map at the size of its table (allocator
    /// overheads are not counted).
    decoded_bytes: usize,
    /// The walk stops once `decoded_bytes` is over this.
    limit: usize,
    /// The spans walked so far.
    spans: usize,
}

/// What walking a body found.
#[derive(Debug)]
struct Walked {
    /// How many spans it carries; `None` when the walk refused it (prost decides then).
    spans: Option<usize>,
    /// What it holds decoded, as far as the walk went.
    decoded_bytes: usize,
}

/// The walk of one message, which prost decodes with the recursion depth given.
type MessageWalk = fn(&mut Walk, &mut &[u8], u32) -> Result<(), Refused>;

/// A repeated field of a message (or a map), its elements counted as the walk reads them.
#[derive(Clone, Copy, Debug)]
struct Repeated {
    count: usize,
    /// An element's size: decoded, the elements are a `Vec` of them, or a map's entries.
    size: usize,
    map: bool,
}

impl Repeated {
    /// A repeated field that decodes into a `Vec<T>`.
    const fn vec<T>() -> Self {
        Repeated {
            count: 0,
            size: size_of::<T>(),
            map: false,
        }
    }

    /// A map field that decodes into a `HashMap` of entries of `T`.
    const fn map<T>() -> Self {
        Repeated {
            count: 0,
            size: size_of::<T>(),
            map: true,
        }
    }

    /// The heap bytes its elements hold decoded (without what each element holds itself).
    fn bytes(&self) -> usize {
        if self.map {
            map_bytes(self.count, self.size)
        } else {
            vec_bytes(self.count, self.size)
        }
    }
}

/// The heap bytes of a `Vec` of `len` elements of `size` bytes, pushed one at a time: its
/// capacity starts at 4 and doubles.
fn vec_bytes(len: usize, size: usize) -> usize {
    match len {
        0 => 0,
        _ => len.next_power_of_two().max(4).saturating_mul(size),
    }
}

/// The heap bytes of a string of `len` bytes decoded into a new `String` (at least 8).
fn string_bytes(len: usize) -> usize {
    match len {
        0 => 0,
        _ => len.max(8),
    }
}

/// The heap bytes of a `HashMap` of `len` entries of `size` bytes, inserted one at a time:
/// a table of a power of two buckets, at most seven eighths full, a control byte per bucket
/// and a group of control bytes more.
fn map_bytes(len: usize, size: usize) -> usize {
    let buckets = match len {
        0 => return 0,
        1..=3 => 4,
        4..=7 => 8,
        _ => len.saturating_mul(8).div_ceil(7).next_power_of_two(),
    };
    buckets.saturating_mul(size + 1).saturating_add(16)
}

/// A field of a message as the walk reaches it: its number and wire type, and the rest of
/// the message from its value on, which prost decodes with `depth` levels of recursion left.
struct Field<'a, 'b> {
    tag: u32,
    wire_type: WireType,
    buf: &'a mut &'b [u8],
    depth: u32,
}

impl<'b> Field<'_, 'b> {
    /// A field that is not in the schema, skipped as prost skips it.
    fn skip(self) -> Result<(), Refused> {
        skip(self.wire_type, self.tag, self.buf, self.depth)
    }

    /// Any varint field: int64, uint64, int32, bool and enum values all accept any varint.
    #[inline(always)]
    fn varint(self) -> Result<(), Refused> {
        check_wire_type(WireType::Varint, self.wire_type)?;
        read_varint(self.buf)?;
        Ok(())
    }

    /// `fixed32` fields.
    #[inline(always)]
    fn fixed32(self) -> Result<(), Refused> {
        self.fixed(WireType::ThirtyTwoBit, 4)
    }

    /// `fixed64` and `double` fields.
    #[inline(always)]
    fn fixed64(self) -> Result<(), Refused> {
        self.fixed(WireType::SixtyFourBit, 8)
    }

    #[inline(always)]
    fn fixed(self, wire_type: WireType, len: usize) -> Result<(), Refused> {
        check_wire_type(wire_type, self.wire_type)?;
        if self.buf.len() < len {
            return Err(Refused);
        }
        *self.buf = &self.buf[len..];
        Ok(())
    }

    /// A length-delimited field's content.
    #[inline(always)]
    fn delimited(&mut self) -> Result<&'b [u8], Refused> {
        check_wire_type(WireType::LengthDelimited, self.wire_type)?;
        delimited(self.buf)
    }
}

impl Walk {
    /// Walks `body` with `walk` (a report's or an export's), counting against `limit`: refused
    /// when decoded it would hold more, as far as the walk went.
    fn body(
        body: &[u8],
        limit: usize,
        walk: fn(&mut Walk, &[u8]) -> Result<(), Refused>,
    ) -> Result<Walked, Refusal> {
        let mut state = Walk {
            decoded_bytes: 0,
            limit,
            spans: 0,
        };
        let walked = walk(&mut state, body);
        if state.decoded_bytes > limit {
            return Err(Refusal::TooLarge {
                decoded_bytes: state.decoded_bytes,
                limit,
            });
        }
        Ok(Walked {
            spans: walked.ok().map(|()| state.spans),
            decoded_bytes: state.decoded_bytes,
        })
    }

    fn add(&mut self, bytes: usize) {
        self.decoded_bytes = self.decoded_bytes.saturating_add(bytes);
    }

    /// Walks a report (its spans are counted in `spans`).
    fn report(&mut self, mut body: &[u8]) -> Result<(), Refused> {
        let mut spans = [Repeated::vec::<LightStepSpan>()];
        self.fields(
            &mut body,
            RECURSION_LIMIT,
            &mut spans,
            |walk, [spans], field| match field.tag {
                1 => walk.message(field, Self::reporter),
                2 => walk.message(field, Self::auth),
                SPANS_FIELD => walk.element(field, Self::span, spans),
                5 => field.varint(),
                6 => walk.message(field, Self::internal_metrics),
                _ => field.skip(),
            },
        )?;
        self.spans = spans[0].count;
        Ok(())
    }

    /// Walks the fields of one message, which prost decodes with `depth` levels of recursion
    /// left, with `walk_field`: the schema's fields are walked, the others skipped. The
    /// elements of its repeated fields are counted in `repeated`, and what they hold is added
    /// whether the walk ends or is refused: what was walked counts against the limit.
    #[inline(always)]
    fn fields<const N: usize, F>(
        &mut self,
        buf: &mut &[u8],
        depth: u32,
        repeated: &mut [Repeated; N],
        mut walk_field: F,
    ) -> Result<(), Refused>
    where
        F: FnMut(&mut Self, &mut [Repeated; N], Field<'_, '_>) -> Result<(), Refused>,
    {
        let mut walked = Ok(());
        while !buf.is_empty() && walked.is_ok() {
            walked = key(buf).and_then(|(tag, wire_type)| {
                let field = Field {
                    tag,
                    wire_type,
                    buf: &mut *buf,
                    depth,
                };
                walk_field(self, repeated, field)
            });
        }
        for field in repeated.iter() {
            self.add(field.bytes());
        }
        walked
    }

    /// A message field: its fields decode with one level of recursion less.
    #[inline(always)]
    fn message(&mut self, mut field: Field<'_, '_>, walk: MessageWalk) -> Result<(), Refused> {
        let depth = field.depth.checked_sub(1).ok_or(Refused)?;
        walk(self, &mut field.delimited()?, depth)
    }

    /// One element of a repeated message field, counted in `repeated`. Refused as soon as
    /// what the walk holds with the elements so far is over the limit: many empty elements
    /// hold far more decoded than they take on the wire.
    #[inline(always)]
    fn element(
        &mut self,
        field: Field<'_, '_>,
        walk: MessageWalk,
        repeated: &mut Repeated,
    ) -> Result<(), Refused> {
        self.message(field, walk)?;
        repeated.count += 1;
        if self.decoded_bytes.saturating_add(repeated.bytes()) > self.limit {
            return Err(Refused);
        }
        Ok(())
    }

    /// A `string` field: UTF-8, decoded into a new `String`.
    #[inline(always)]
    fn string(&mut self, mut field: Field<'_, '_>) -> Result<(), Refused> {
        let bytes = field.delimited()?;
        if !bytes.is_ascii() {
            std::str::from_utf8(bytes).map_err(|_| Refused)?;
        }
        self.add(string_bytes(bytes.len()));
        Ok(())
    }

    /// A `bytes` field: decoded into a new `Vec<u8>`.
    #[inline(always)]
    fn bytes(&mut self, mut field: Field<'_, '_>) -> Result<(), Refused> {
        let len = field.delimited()?.len();
        self.add(string_bytes(len));
        Ok(())
    }

    /// `LightStepSpan`.
    fn span(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        let mut repeated = [
            Repeated::vec::<Reference>(),
            Repeated::vec::<KeyValue>(),
            Repeated::vec::<Log>(),
        ];
        self.fields(
            buf,
            depth,
            &mut repeated,
            |walk, [references, tags, logs], field| match field.tag {
                1 => walk.message(field, Self::span_context),
                2 => walk.string(field),
                3 => walk.element(field, Self::reference, references),
                4 => walk.message(field, Self::timestamp),
                5 => field.varint(),
                6 => walk.element(field, Self::key_value, tags),
                7 => walk.element(field, Self::log, logs),
                _ => field.skip(),
            },
        )
    }

    /// `LightStepSpanContext`, with its baggage map.
    fn span_context(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        let mut baggage = [Repeated::map::<(String, String)>()];
        self.fields(
            buf,
            depth,
            &mut baggage,
            |walk, [baggage], field| match field.tag {
                1 | 2 => field.varint(),
                3 => walk.element(field, Self::string_map_entry, baggage),
                _ => field.skip(),
            },
        )
    }

    /// An entry of a `map<string, string>`.
    fn string_map_entry(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        self.fields(buf, depth, &mut [], |walk, _, field| match field.tag {
            1 | 2 => walk.string(field),
            _ => field.skip(),
        })
    }

    /// `Reference`.
    fn reference(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        self.fields(buf, depth, &mut [], |walk, _, field| match field.tag {
            1 => field.varint(),
            2 => walk.message(field, Self::span_context),
            _ => field.skip(),
        })
    }

    /// `google.protobuf.Timestamp`.
    fn timestamp(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        self.fields(buf, depth, &mut [], |_, _, field| match field.tag {
            1 | 2 => field.varint(),
            _ => field.skip(),
        })
    }

    /// `KeyValue`: a key and a oneof value.
    fn key_value(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        self.fields(buf, depth, &mut [], |walk, _, field| match field.tag {
            1 | 2 | 6 => walk.string(field),
            3 | 5 => field.varint(),
            4 => field.fixed64(),
            _ => field.skip(),
        })
    }

    /// `Log`.
    fn log(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        let mut fields = [Repeated::vec::<KeyValue>()];
        self.fields(
            buf,
            depth,
            &mut fields,
            |walk, [fields], field| match field.tag {
                1 => walk.message(field, Self::timestamp),
                2 => walk.element(field, Self::key_value, fields),
                _ => field.skip(),
            },
        )
    }

    /// `Reporter`.
    fn reporter(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        let mut tags = [Repeated::vec::<KeyValue>()];
        self.fields(buf, depth, &mut tags, |walk, [tags], field| {
            match field.tag {
                1 => field.varint(),
                4 => walk.element(field, Self::key_value, tags),
                _ => field.skip(),
            }
        })
    }

    /// `Auth`.
    fn auth(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        self.fields(buf, depth, &mut [], |walk, _, field| match field.tag {
            1 => walk.string(field),
            _ => field.skip(),
        })
    }

    /// `InternalMetrics`.
    fn internal_metrics(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        let mut repeated = [
            Repeated::vec::<Log>(),
            Repeated::vec::<MetricsSample>(),
            Repeated::vec::<MetricsSample>(),
        ];
        self.fields(
            buf,
            depth,
            &mut repeated,
            |walk, [logs, counts, gauges], field| match field.tag {
                1 => walk.message(field, Self::timestamp),
                2 => field.varint(),
                3 => walk.element(field, Self::log, logs),
                4 => walk.element(field, Self::metrics_sample, counts),
                5 => walk.element(field, Self::metrics_sample, gauges),
                _ => field.skip(),
            },
        )
    }

    /// `MetricsSample`: a name and a oneof value.
    fn metrics_sample(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        self.fields(buf, depth, &mut [], |walk, _, field| match field.tag {
            1 => walk.string(field),
            2 => field.varint(),
            3 => field.fixed64(),
            _ => field.skip(),
        })
    }
}

/// Skips a field that is not in the schema as prost's `skip_field` does, groups and the
/// recursion limit included: `depth` is what prost has left at this field.
fn skip(wire_type: WireType, tag: u32, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
    if depth == 0 {
        return Err(Refused);
    }
    let len = match wire_type {
        WireType::Varint => {
            read_varint(buf)?;
            0
        }
        WireType::ThirtyTwoBit => 4,
        WireType::SixtyFourBit => 8,
        WireType::LengthDelimited => read_varint(buf)?,
        WireType::StartGroup => loop {
            let (inner_tag, inner_wire_type) = key(buf)?;
            match inner_wire_type {
                WireType::EndGroup if inner_tag == tag => break 0,
                WireType::EndGroup => return Err(Refused),
                _ => skip(inner_wire_type, inner_tag, buf, depth - 1)?,
            }
        },
        WireType::EndGroup => return Err(Refused),
    };
    if len > buf.len() as u64 {
        return Err(Refused);
    }
    *buf = &buf[len as usize..];
    Ok(())
}

/// A field's key, checked as prost checks it: at most `u32::MAX`, a known wire type, and a
/// field number of at least 1.
#[inline(always)]
fn key(buf: &mut &[u8]) -> Result<(u32, WireType), Refused> {
    let key = read_varint(buf)?;
    if key > u64::from(u32::MAX) {
        return Err(Refused);
    }
    let wire_type = WireType::try_from(key & 7)?;
    let tag = (key >> 3) as u32;
    if tag == 0 {
        return Err(Refused);
    }
    Ok((tag, wire_type))
}

/// A varint of at most ten bytes that fits in 64 bits, as prost reads it.
#[inline(always)]
fn read_varint(buf: &mut &[u8]) -> Result<u64, Refused> {
    let bytes = *buf;
    // Keys and lengths: nearly always one byte.
    if let Some(&byte) = bytes.first() {
        if byte < 0x80 {
            *buf = &bytes[1..];
            return Ok(u64::from(byte));
        }
    }
    let mut value = 0;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            // The tenth byte holds the 64th bit only.
            if i == 9 && byte > 1 {
                return Err(Refused);
            }
            *buf = &bytes[i + 1..];
            return Ok(value);
        }
    }
    Err(Refused)
}

/// A length-delimited field's content.
#[inline(always)]
fn delimited<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], Refused> {
    let len = read_varint(buf)?;
    if len > buf.len() as u64 {
        return Err(Refused);
    }
    let (content, rest) = buf.split_at(len as usize);
    *buf = rest;
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::lightstep::{
        key_value, metrics_sample, Auth, InternalMetrics, KeyValue, LightStepSpan,
        LightStepSpanContext, Log, MetricsSample, Reference, Reporter, Timestamp,
    };
    use proptest::prelude::*;
    use proptest::sample::Index;
    use prost::encoding::encode_varint;

    /// Counts the bytes that each thread's allocations hold, to check what decoding holds.
    pub(super) mod counting {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        pub(super) struct Counting;

        thread_local! {
            static LIVE: Cell<isize> = const { Cell::new(0) };
        }

        fn count(delta: isize) {
            // A thread whose locals are gone frees no more than it counted.
            let _ = LIVE.try_with(|live| live.set(live.get() + delta));
        }

        /// The bytes this thread's allocations hold, less what it freed.
        pub(in crate::satellite::ingest) fn live() -> isize {
            LIVE.with(Cell::get)
        }

        // SAFETY: every call goes to `System` unchanged; only the sizes are counted.
        unsafe impl GlobalAlloc for Counting {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                // SAFETY: the caller keeps the contract of `GlobalAlloc`, passed on unchanged.
                let ptr = unsafe { System.alloc(layout) };
                if !ptr.is_null() {
                    count(layout.size() as isize);
                }
                ptr
            }

            unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
                // SAFETY: the caller keeps the contract of `GlobalAlloc`, passed on unchanged.
                let ptr = unsafe { System.alloc_zeroed(layout) };
                if !ptr.is_null() {
                    count(layout.size() as isize);
                }
                ptr
            }

            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                // SAFETY: the caller keeps the contract of `GlobalAlloc`, passed on unchanged.
                unsafe { System.dealloc(ptr, layout) };
                count(-(layout.size() as isize));
            }

            unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
                // SAFETY: the caller keeps the contract of `GlobalAlloc`, passed on unchanged.
                let new = unsafe { System.realloc(ptr, layout, new_size) };
                if !new.is_null() {
                    count(new_size as isize - layout.size() as isize);
                }
                new
            }
        }
    }

    #[global_allocator]
    static ALLOCATOR: counting::Counting = counting::Counting;

    fn kv(key: &str, value: key_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(value),
        }
    }

    fn report() -> ReportRequest {
        let span = |id: u64| LightStepSpan {
            span_context: Some(LightStepSpanContext {
                trace_id: 7,
                span_id: id,
                baggage: [("user".to_owned(), "ann".to_owned())].into(),
            }),
            operation_name: format!("op {id}"),
            references: vec![Reference {
                relationship: 1,
                span_context: Some(LightStepSpanContext {
                    trace_id: 7,
                    span_id: 1,
                    baggage: Default::default(),
                }),
            }],
            start_timestamp: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            }),
            duration_micros: 300,
            tags: vec![
                kv("s", key_value::Value::StringValue("text".into())),
                kv("i", key_value::Value::IntValue(-3)),
                kv("f", key_value::Value::DoubleValue(1.5)),
                kv("b", key_value::Value::BoolValue(true)),
                kv("j", key_value::Value::JsonValue("{}".into())),
            ],
            logs: vec![Log {
                timestamp: Some(Timestamp {
                    seconds: 1,
                    nanos: 2,
                }),
                fields: vec![kv("event", key_value::Value::StringValue("x".into()))],
            }],
        };
        ReportRequest {
            reporter: Some(Reporter {
                reporter_id: 9,
                tags: vec![kv(
                    "lightstep.component_name",
                    key_value::Value::StringValue("svc".into()),
                )],
            }),
            auth: Some(Auth {
                access_token: "secret".into(),
            }),
            spans: vec![span(2), span(3), span(4)],
            timestamp_offset_micros: -4,
            internal_metrics: Some(InternalMetrics {
                start_timestamp: Some(Timestamp {
                    seconds: 3,
                    nanos: 4,
                }),
                duration_micros: 5,
                logs: vec![Log::default()],
                counts: vec![MetricsSample {
                    name: "spans.dropped".into(),
                    value: Some(metrics_sample::Value::IntValue(1)),
                }],
                gauges: vec![MetricsSample {
                    name: "g".into(),
                    value: Some(metrics_sample::Value::DoubleValue(0.5)),
                }],
            }),
        }
    }

    /// How many spans the walk `walk` finds in `body`, against no limit: `None` when it
    /// refuses the body.
    pub(super) fn walked_spans(
        body: &[u8],
        walk: fn(&mut Walk, &[u8]) -> Result<(), Refused>,
    ) -> Option<usize> {
        Walk::body(body, usize::MAX, walk)
            .expect("nothing is over no limit")
            .spans
    }

    /// The walk judges `body` as prost does, and `ingest` answers what prost answers.
    fn agrees_with_prost(body: &[u8]) {
        let walked = walked_spans(body, Walk::report);
        let decoded = ReportRequest::decode(body);
        assert_eq!(
            walked.is_some(),
            decoded.is_ok(),
            "{body:x?}: the walk says {walked:?}, prost {decoded:?}"
        );
        match (ingest(body, usize::MAX), decoded) {
            (Ok(ingested), Ok(mut full)) => {
                let spans = std::mem::take(&mut full.spans).len();
                // Compared encoded: a damaged double may be a NaN, unequal to itself.
                assert_eq!(
                    (ingested.header.encode_to_vec(), ingested.spans),
                    (full.encode_to_vec(), spans)
                );
            }
            (Err(Refusal::Invalid(ours)), Err(theirs)) => assert_eq!(ours, theirs),
            (ours, theirs) => panic!("{body:x?}: ingest says {ours:?}, prost {theirs:?}"),
        }
    }

    /// What the walk (`walk`) says decoding `body` as an `M` holds is what it holds, or an
    /// eighth more at most (fields given twice in a message are counted twice).
    pub(super) fn walk_says_what_decoding_holds<M: Message + Default>(
        body: &[u8],
        walk: fn(&mut Walk, &[u8]) -> Result<(), Refused>,
    ) {
        let walked = Walk::body(body, usize::MAX, walk).expect("nothing is over no limit");
        assert!(walked.spans.is_some(), "not a valid body: {body:x?}");
        let before = counting::live();
        let decoded = M::decode(body).unwrap();
        let held = usize::try_from(counting::live() - before).unwrap();
        drop(decoded);
        let said = walked.decoded_bytes;
        assert!(held <= said, "held {held}, said {said}");
        assert!(said <= held + held / 8, "held {held}, said {said}");
    }

    /// `body` judged by `agrees`, whole and then cut at `cut`.
    pub(super) fn judged_whole_and_cut(mut body: Vec<u8>, cut: Index, agrees: fn(&[u8])) {
        agrees(&body);
        body.truncate(cut.index(body.len() + 1));
        agrees(&body);
    }

    /// `body` with bytes replaced (`flips`), judged by `agrees` whole and cut at `cut`.
    pub(super) fn judged_damaged(
        mut body: Vec<u8>,
        flips: Vec<(Index, u8)>,
        cut: Index,
        agrees: fn(&[u8]),
    ) {
        for (at, byte) in flips {
            let at = at.index(body.len());
            body[at] = byte;
        }
        judged_whole_and_cut(body, cut, agrees);
    }

    #[test]
    fn a_report_is_read_without_its_spans_and_decoded_whole_later() {
        let sent = report();
        let body = sent.encode_to_vec();
        let ingested = ingest(&body, usize::MAX).expect("the walk reads it");
        assert_eq!(ingested.spans, 3);
        assert_eq!(
            ingested.header,
            ReportRequest {
                spans: Vec::new(),
                ..sent.clone()
            }
        );
        assert_eq!(decode(&body), sent);
        agrees_with_prost(&body);
    }

    #[test]
    fn garbage_is_refused_with_prosts_error() {
        for body in [
            &b"<html><body>502 Bad Gateway</body></html>"[..],
            b"\xff\xff\xff garbage",
            b"\x1a\x05ab", // a span longer than the body
        ] {
            assert!(ingest(body, usize::MAX).is_err());
            agrees_with_prost(body);
        }
        // A span whose operation name is not UTF-8.
        let mut body = ReportRequest::default().encode_to_vec();
        body.extend_from_slice(b"\x1a\x04\x12\x02\xc3\x28");
        let Err(Refusal::Invalid(error)) = ingest(&body, usize::MAX) else {
            panic!("accepted")
        };
        assert!(error.to_string().contains("UTF-8"), "{error}");
        agrees_with_prost(&body);
    }

    /// The key of field number 2^29 and wire type 0, which prost refuses (a key above
    /// `u32::MAX`) but the walk took: answered 200, counted, then decoded as nothing.
    #[test]
    fn a_key_above_u32_max_is_refused() {
        for key in [1 << 32, (1 << 35) - 1, u64::MAX] {
            let mut body = report().encode_to_vec();
            encode_varint(key, &mut body);
            body.push(1);
            assert!(matches!(
                ingest(&body, usize::MAX),
                Err(Refusal::Invalid(_))
            ));
            agrees_with_prost(&body);
        }
    }

    #[test]
    fn groups_and_unknown_fields_are_judged_as_prost_judges_them() {
        let valid = report().encode_to_vec();
        // An unknown varint field and an unknown group inside a span, and at the top.
        for extra in [&b"\x78\x01"[..], b"\x7b\x78\x01\x7c", b"\x7b\x78\x01"] {
            let mut span = LightStepSpan::default().encode_to_vec();
            span.extend_from_slice(extra);
            let mut body = valid.clone();
            body.push(0x1a);
            body.push(span.len() as u8);
            body.extend_from_slice(&span);
            agrees_with_prost(&body);
            let mut body = valid.clone();
            body.extend_from_slice(extra);
            agrees_with_prost(&body);
        }
    }

    /// `depth` groups of field 15, one inside the other, around a varint field.
    pub(super) fn nested_groups(depth: usize) -> Vec<u8> {
        let mut bytes = vec![0x7b; depth];
        bytes.extend_from_slice(b"\x78\x01");
        bytes.extend(std::iter::repeat_n(0x7c, depth));
        bytes
    }

    #[test]
    fn groups_nest_as_deep_as_prost_lets_them_at_every_level() {
        for depth in [1, 90, 96, 97, 98, 99, 100, 101, 150] {
            for level in LEVELS {
                agrees_with_prost(&with_extra(level, &nested_groups(depth)));
            }
        }
    }

    /// Map entries under keys of other wire types.
    #[test]
    fn map_entries_are_read_as_prost_reads_them() {
        for entry in [
            &b"\x18\x00"[..],
            b"\x19\x00",
            b"\x1d\x02\x0a\x00",
            b"\x1b\x00",
        ] {
            for level in [Level::SpanContext, Level::ReferenceContext] {
                agrees_with_prost(&with_extra(level, entry));
            }
        }
    }

    /// Where a field is added to a valid report: in which message.
    #[derive(Clone, Copy, Debug)]
    enum Level {
        Report,
        Reporter,
        ReporterTag,
        Auth,
        Span,
        SpanContext,
        BaggageEntry,
        Reference,
        ReferenceContext,
        StartTimestamp,
        Tag,
        Log,
        LogTimestamp,
        LogField,
        Metrics,
        MetricsTimestamp,
        MetricsLog,
        Count,
        Gauge,
    }

    const LEVELS: [Level; 19] = [
        Level::Report,
        Level::Reporter,
        Level::ReporterTag,
        Level::Auth,
        Level::Span,
        Level::SpanContext,
        Level::BaggageEntry,
        Level::Reference,
        Level::ReferenceContext,
        Level::StartTimestamp,
        Level::Tag,
        Level::Log,
        Level::LogTimestamp,
        Level::LogField,
        Level::Metrics,
        Level::MetricsTimestamp,
        Level::MetricsLog,
        Level::Count,
        Level::Gauge,
    ];

    /// A length-delimited field.
    pub(super) fn field(tag: u64, content: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode_varint(tag << 3 | 2, &mut bytes);
        encode_varint(content.len() as u64, &mut bytes);
        bytes.extend_from_slice(content);
        bytes
    }

    /// A valid report with one more message at `level`, which holds `extra` after its own
    /// fields (a repeated message gets one more element; a singular one merges).
    fn with_extra(level: Level, extra: &[u8]) -> Vec<u8> {
        let mut body = report().encode_to_vec();
        let nested = |path: &[u64]| {
            path.iter()
                .rev()
                .fold(extra.to_vec(), |content, &tag| field(tag, &content))
        };
        let added = match level {
            Level::Report => extra.to_vec(),
            Level::Reporter => nested(&[1]),
            Level::ReporterTag => nested(&[1, 4]),
            Level::Auth => nested(&[2]),
            Level::Span => nested(&[3]),
            Level::SpanContext => nested(&[3, 1]),
            Level::BaggageEntry => nested(&[3, 1, 3]),
            Level::Reference => nested(&[3, 3]),
            Level::ReferenceContext => nested(&[3, 3, 2]),
            Level::StartTimestamp => nested(&[3, 4]),
            Level::Tag => nested(&[3, 6]),
            Level::Log => nested(&[3, 7]),
            Level::LogTimestamp => nested(&[3, 7, 1]),
            Level::LogField => nested(&[3, 7, 2]),
            Level::Metrics => nested(&[6]),
            Level::MetricsTimestamp => nested(&[6, 1]),
            Level::MetricsLog => nested(&[6, 3]),
            Level::Count => nested(&[6, 4]),
            Level::Gauge => nested(&[6, 5]),
        };
        body.extend_from_slice(&added);
        body
    }

    /// A field key: known and unknown field numbers with every wire type (the invalid 6 and
    /// 7 too), field number 0, the largest field numbers, and keys above `u32::MAX`.
    fn any_key() -> impl Strategy<Value = u64> {
        prop_oneof![
            (1..20u64, 0..8u64).prop_map(|(tag, wire)| tag << 3 | wire),
            (0..8u64).prop_map(|wire| wire),
            ((1u64 << 29) - 2..1 << 29, 0..8u64).prop_map(|(tag, wire)| tag << 3 | wire),
            (1u64 << 32)..1 << 36,
            any::<u64>(),
        ]
    }

    /// Fields of any kind: a key and a payload that fits its wire type or not, groups
    /// (closed, unclosed, mismatched, nested), truncated varints.
    pub(super) fn any_fields() -> impl Strategy<Value = Vec<u8>> {
        let payload = prop_oneof![
            any::<u64>().prop_map(|v| {
                let mut bytes = Vec::new();
                encode_varint(v, &mut bytes);
                bytes
            }),
            prop::collection::vec(any::<u8>(), 0..12),
            (0..20usize, prop::collection::vec(any::<u8>(), 0..24)).prop_map(|(len, bytes)| {
                let mut out = Vec::new();
                encode_varint(len as u64, &mut out);
                out.extend_from_slice(&bytes);
                out
            }),
            "[a-zé]{0,8}".prop_map(|text| {
                let mut out = Vec::new();
                encode_varint(text.len() as u64, &mut out);
                out.extend_from_slice(text.as_bytes());
                out
            }),
            (1..20u64, 0..110usize, any::<bool>()).prop_map(|(tag, depth, closed)| {
                let mut out = nested_groups(depth);
                if !closed {
                    out.truncate(out.len() / 2);
                }
                out.push((tag << 3 | 4) as u8);
                out
            }),
        ];
        prop::collection::vec((any_key(), payload), 1..4).prop_map(|fields| {
            let mut bytes = Vec::new();
            for (key, payload) in fields {
                encode_varint(key, &mut bytes);
                bytes.extend_from_slice(&payload);
            }
            bytes
        })
    }

    /// `read_varint` against prost's `decode_varint`.
    fn same_varint(bytes: &[u8]) {
        let (mut ours, mut theirs) = (bytes, bytes);
        match (
            read_varint(&mut ours),
            prost::encoding::decode_varint(&mut theirs),
        ) {
            (Ok(a), Ok(b)) => assert_eq!((a, ours), (b, theirs), "{bytes:x?}"),
            (Err(_), Err(_)) => {}
            (a, b) => panic!("{bytes:x?}: ours {a:?}, prost's {b:?}"),
        }
    }

    #[test]
    fn varints_are_read_as_prost_reads_them() {
        for value in [0, 1, 127, 128, 300, 1 << 35, u64::MAX >> 1, u64::MAX] {
            let mut bytes = Vec::new();
            prost::encoding::encode_varint(value, &mut bytes);
            bytes.push(0x05);
            same_varint(&bytes);
        }
        let mut overflow = vec![0xff; 9];
        overflow.push(0x02);
        for bytes in [&[][..], &[0x80], &[0xff; 10], &[0xff; 11], &overflow] {
            same_varint(bytes);
        }
    }

    #[test]
    fn decoding_holds_no_more_than_the_walk_says() {
        walk_says_what_decoding_holds::<ReportRequest>(&report().encode_to_vec(), Walk::report);
    }

    #[test]
    fn reports_that_would_hold_too_much_decoded_are_refused() {
        let limit = 64 << 20;
        // 2 M empty spans: 4 MB that decoding turned into 375 MB.
        let empty_spans = b"\x1a\x00".repeat(2 << 20);
        // 2 M empty tags in one span, and 2 M empty baggage entries.
        let mut empty_tags = field(3, &b"\x32\x00".repeat(2 << 20));
        empty_tags.extend_from_slice(&report().encode_to_vec());
        let empty_entries = field(3, &field(1, &b"\x1a\x00".repeat(2 << 20)));
        // The same tags in a span that ends in a broken field: what the walk counted before
        // it was refused counts (prost would build the tags before it refused the span).
        let broken_span = field(
            3,
            &[&b"\x32\x00".repeat(2 << 20)[..], b"\x12\x05ab"].concat(),
        );
        for body in [empty_spans, empty_tags, empty_entries, broken_span] {
            match ingest(&body, limit) {
                Err(Refusal::TooLarge {
                    decoded_bytes,
                    limit: refused_at,
                }) => assert!(decoded_bytes > limit && refused_at == limit),
                other => panic!("{other:?}"),
            }
        }
        // Under the limit, the same report is taken.
        let body = b"\x1a\x00".repeat(1000);
        assert_eq!(ingest(&body, limit).unwrap().spans, 1000);
        walk_says_what_decoding_holds::<ReportRequest>(&body, Walk::report);
    }

    /// A report of the reporter's shape, with any text and any number of items.
    fn any_report() -> impl Strategy<Value = ReportRequest> {
        let kv = (
            "[a-z.]{0,12}",
            prop_oneof![
                "[ -~]{0,20}".prop_map(key_value::Value::StringValue),
                any::<i64>().prop_map(key_value::Value::IntValue),
                any::<f64>().prop_map(key_value::Value::DoubleValue),
                any::<bool>().prop_map(key_value::Value::BoolValue),
            ],
        )
            .prop_map(|(key, value)| KeyValue {
                key,
                value: Some(value),
            });
        let context = (
            any::<u64>(),
            any::<u64>(),
            prop::collection::hash_map("[a-z]{0,10}", "[a-z]{0,10}", 0..12),
        )
            .prop_map(|(trace_id, span_id, baggage)| LightStepSpanContext {
                trace_id,
                span_id,
                baggage,
            });
        let log = prop::collection::vec(kv.clone(), 0..6).prop_map(|fields| Log {
            timestamp: Some(Timestamp {
                seconds: 1,
                nanos: 2,
            }),
            fields,
        });
        let span = (
            prop::option::of(context.clone()),
            "[a-z ]{0,30}",
            prop::collection::vec(context, 0..3),
            prop::collection::vec(kv.clone(), 0..20),
            prop::collection::vec(log, 0..5),
        )
            .prop_map(|(span_context, operation_name, references, tags, logs)| {
                LightStepSpan {
                    span_context,
                    operation_name,
                    references: references
                        .into_iter()
                        .map(|c| Reference {
                            relationship: 0,
                            span_context: Some(c),
                        })
                        .collect(),
                    start_timestamp: Some(Timestamp {
                        seconds: 5,
                        nanos: 6,
                    }),
                    duration_micros: 7,
                    tags,
                    logs,
                }
            });
        (
            prop::collection::vec(span, 0..24),
            prop::collection::vec(kv, 0..6),
        )
            .prop_map(|(spans, tags)| ReportRequest {
                reporter: Some(Reporter {
                    reporter_id: 1,
                    tags,
                }),
                spans,
                ..report()
            })
    }

    proptest! {
        #[test]
        fn arbitrary_varints_are_read_as_prost_reads_them(
            bytes in proptest::collection::vec(any::<u8>(), 0..12)
        ) {
            same_varint(&bytes);
        }

        #[test]
        fn arbitrary_bytes_are_judged_as_prost_judges_them(
            body in proptest::collection::vec(any::<u8>(), 0..200)
        ) {
            agrees_with_prost(&body);
        }

        #[test]
        fn damaged_reports_are_judged_as_prost_judges_them(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            judged_damaged(report().encode_to_vec(), flips, cut, agrees_with_prost);
        }

        #[test]
        fn added_fields_are_judged_as_prost_judges_them(
            level in prop::sample::select(LEVELS.to_vec()),
            extra in any_fields(),
            cut in any::<prop::sample::Index>(),
        ) {
            judged_whole_and_cut(with_extra(level, &extra), cut, agrees_with_prost);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn decoding_any_report_holds_no_more_than_the_walk_says(report in any_report()) {
            let body = report.encode_to_vec();
            agrees_with_prost(&body);
            walk_says_what_decoding_holds::<ReportRequest>(&body, Walk::report);
        }
    }
}
