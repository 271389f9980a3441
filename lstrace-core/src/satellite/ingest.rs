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

use crate::protocol::{KeyValue, LightStepSpan, Log, MetricsSample, Reference, ReportRequest};
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
    let mut walk = Walk {
        decoded_bytes: 0,
        limit: max_decoded_bytes,
        spans: 0,
    };
    let walked = walk.report(body);
    if walk.decoded_bytes > max_decoded_bytes {
        return Err(Refusal::TooLarge {
            decoded_bytes: walk.decoded_bytes,
            limit: max_decoded_bytes,
        });
    }
    match walked {
        Ok(spans) => Ok(Ingested {
            header: header(body).map_err(Refusal::Invalid)?,
            spans,
            decoded_bytes: walk.decoded_bytes,
        }),
        // prost refuses it no further than the walk went, which held no more than the limit.
        Err(Refused) => {
            let mut full = ReportRequest::decode(body).map_err(Refusal::Invalid)?;
            let spans = std::mem::take(&mut full.spans).len();
            Ok(Ingested {
                header: full,
                spans,
                decoded_bytes: walk.decoded_bytes,
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

/// Walks a report against the schema without decoding it, adding up what decoding it would
/// hold.
struct Walk {
    /// The heap bytes that the values walked so far hold once decoded by prost: each `Vec` at
    /// the capacity that pushing its elements one at a time leaves it with, each string at
    /// the capacity it is decoded into, each map at the size of its table (allocator
    /// overheads are not counted).
    decoded_bytes: usize,
    /// The walk stops once `decoded_bytes` is over this.
    limit: usize,
    /// The OTLP spans walked so far (a LightStep report's walk returns its count).
    spans: usize,
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

impl Walk {
    fn add(&mut self, bytes: usize) {
        self.decoded_bytes = self.decoded_bytes.saturating_add(bytes);
    }

    /// Walks a report; the number of spans it holds. Stops early, refused, once what it
    /// would hold decoded is over the limit.
    fn report(&mut self, mut body: &[u8]) -> Result<usize, Refused> {
        let mut spans = 0;
        let walked = self.report_fields(&mut body, &mut spans);
        self.add(vec_bytes(spans, size_of::<LightStepSpan>()));
        walked.map(|()| spans)
    }

    fn report_fields(&mut self, buf: &mut &[u8], spans: &mut usize) -> Result<(), Refused> {
        let depth = RECURSION_LIMIT;
        while !buf.is_empty() {
            let (tag, wire_type) = key(buf)?;
            match tag {
                1 => self.message(wire_type, buf, depth, Self::reporter)?,
                2 => self.message(wire_type, buf, depth, Self::auth)?,
                SPANS_FIELD => {
                    self.message(wire_type, buf, depth, Self::span)?;
                    *spans += 1;
                }
                5 => varint(wire_type, buf)?,
                6 => self.message(wire_type, buf, depth, Self::internal_metrics)?,
                _ => skip(wire_type, tag, buf, depth)?,
            }
            let spans_bytes = vec_bytes(*spans, size_of::<LightStepSpan>());
            if self.decoded_bytes.saturating_add(spans_bytes) > self.limit {
                return Err(Refused);
            }
        }
        Ok(())
    }

    /// Walks the fields of one message, which prost decodes with `depth` levels of recursion
    /// left: `known` walks a field of the schema and says whether it was one; the others
    /// are skipped as prost skips them.
    fn fields(
        &mut self,
        buf: &mut &[u8],
        depth: u32,
        mut known: impl FnMut(&mut Self, u32, WireType, &mut &[u8]) -> Result<bool, Refused>,
    ) -> Result<(), Refused> {
        while !buf.is_empty() {
            let (tag, wire_type) = key(buf)?;
            if !known(self, tag, wire_type, buf)? {
                skip(wire_type, tag, buf, depth)?;
            }
        }
        Ok(())
    }

    /// A message field of a message whose fields decode with `depth` levels left.
    #[inline(always)]
    fn message(
        &mut self,
        wire_type: WireType,
        buf: &mut &[u8],
        depth: u32,
        walk: fn(&mut Self, &mut &[u8], u32) -> Result<(), Refused>,
    ) -> Result<(), Refused> {
        check_wire_type(WireType::LengthDelimited, wire_type)?;
        let depth = depth.checked_sub(1).ok_or(Refused)?;
        walk(self, &mut delimited(buf)?, depth)
    }

    #[inline(always)]
    fn string(&mut self, wire_type: WireType, buf: &mut &[u8]) -> Result<(), Refused> {
        check_wire_type(WireType::LengthDelimited, wire_type)?;
        let bytes = delimited(buf)?;
        if !bytes.is_ascii() {
            std::str::from_utf8(bytes).map_err(|_| Refused)?;
        }
        self.add(string_bytes(bytes.len()));
        Ok(())
    }

    /// `LightStepSpan`.
    fn span(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        let (mut references, mut tags, mut logs) = (0, 0, 0);
        self.fields(buf, depth, |walk, tag, wire_type, buf| {
            match tag {
                1 => walk.message(wire_type, buf, depth, Self::span_context)?,
                2 => walk.string(wire_type, buf)?,
                3 => {
                    walk.message(wire_type, buf, depth, Self::reference)?;
                    references += 1;
                }
                4 => walk.message(wire_type, buf, depth, Self::timestamp)?,
                5 => varint(wire_type, buf)?,
                6 => {
                    walk.message(wire_type, buf, depth, Self::key_value)?;
                    tags += 1;
                }
                7 => {
                    walk.message(wire_type, buf, depth, Self::log)?;
                    logs += 1;
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        self.add(vec_bytes(references, size_of::<Reference>()));
        self.add(vec_bytes(tags, size_of::<KeyValue>()));
        self.add(vec_bytes(logs, size_of::<Log>()));
        Ok(())
    }

    /// `LightStepSpanContext`, with its baggage map.
    fn span_context(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        let mut entries = 0;
        self.fields(buf, depth, |walk, tag, wire_type, buf| {
            match tag {
                1 | 2 => varint(wire_type, buf)?,
                3 => {
                    walk.message(wire_type, buf, depth, Self::string_map_entry)?;
                    entries += 1;
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        self.add(map_bytes(entries, size_of::<(String, String)>()));
        Ok(())
    }

    /// An entry of a `map<string, string>`.
    fn string_map_entry(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        self.fields(buf, depth, |walk, tag, wire_type, buf| {
            match tag {
                1 | 2 => walk.string(wire_type, buf)?,
                _ => return Ok(false),
            }
            Ok(true)
        })
    }

    /// `Reference`.
    fn reference(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        self.fields(buf, depth, |walk, tag, wire_type, buf| {
            match tag {
                1 => varint(wire_type, buf)?,
                2 => walk.message(wire_type, buf, depth, Self::span_context)?,
                _ => return Ok(false),
            }
            Ok(true)
        })
    }

    /// `google.protobuf.Timestamp`.
    fn timestamp(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        self.fields(buf, depth, |_, tag, wire_type, buf| {
            match tag {
                1 | 2 => varint(wire_type, buf)?,
                _ => return Ok(false),
            }
            Ok(true)
        })
    }

    /// `KeyValue`: a key and a oneof value.
    fn key_value(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        self.fields(buf, depth, |walk, tag, wire_type, buf| {
            match tag {
                1 | 2 | 6 => walk.string(wire_type, buf)?,
                3 | 5 => varint(wire_type, buf)?,
                4 => fixed64(wire_type, buf)?,
                _ => return Ok(false),
            }
            Ok(true)
        })
    }

    /// `Log`.
    fn log(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        let mut fields = 0;
        self.fields(buf, depth, |walk, tag, wire_type, buf| {
            match tag {
                1 => walk.message(wire_type, buf, depth, Self::timestamp)?,
                2 => {
                    walk.message(wire_type, buf, depth, Self::key_value)?;
                    fields += 1;
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        self.add(vec_bytes(fields, size_of::<KeyValue>()));
        Ok(())
    }

    /// `Reporter`.
    fn reporter(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        let mut tags = 0;
        self.fields(buf, depth, |walk, tag, wire_type, buf| {
            match tag {
                1 => varint(wire_type, buf)?,
                4 => {
                    walk.message(wire_type, buf, depth, Self::key_value)?;
                    tags += 1;
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        self.add(vec_bytes(tags, size_of::<KeyValue>()));
        Ok(())
    }

    /// `Auth`.
    fn auth(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        self.fields(buf, depth, |walk, tag, wire_type, buf| {
            match tag {
                1 => walk.string(wire_type, buf)?,
                _ => return Ok(false),
            }
            Ok(true)
        })
    }

    /// `InternalMetrics`.
    fn internal_metrics(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        let (mut logs, mut counts, mut gauges) = (0, 0, 0);
        self.fields(buf, depth, |walk, tag, wire_type, buf| {
            match tag {
                1 => walk.message(wire_type, buf, depth, Self::timestamp)?,
                2 => varint(wire_type, buf)?,
                3 => {
                    walk.message(wire_type, buf, depth, Self::log)?;
                    logs += 1;
                }
                4 => {
                    walk.message(wire_type, buf, depth, Self::metrics_sample)?;
                    counts += 1;
                }
                5 => {
                    walk.message(wire_type, buf, depth, Self::metrics_sample)?;
                    gauges += 1;
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        self.add(vec_bytes(logs, size_of::<Log>()));
        self.add(vec_bytes(counts, size_of::<MetricsSample>()));
        self.add(vec_bytes(gauges, size_of::<MetricsSample>()));
        Ok(())
    }

    /// `MetricsSample`: a name and a oneof value.
    fn metrics_sample(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        self.fields(buf, depth, |walk, tag, wire_type, buf| {
            match tag {
                1 => walk.string(wire_type, buf)?,
                2 => varint(wire_type, buf)?,
                3 => fixed64(wire_type, buf)?,
                _ => return Ok(false),
            }
            Ok(true)
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

/// Any varint field: int64, uint64, int32, bool and enum values all accept any varint.
#[inline(always)]
fn varint(wire_type: WireType, buf: &mut &[u8]) -> Result<(), Refused> {
    check_wire_type(WireType::Varint, wire_type)?;
    read_varint(buf)?;
    Ok(())
}

#[inline(always)]
fn fixed64(wire_type: WireType, buf: &mut &[u8]) -> Result<(), Refused> {
    check_wire_type(WireType::SixtyFourBit, wire_type)?;
    if buf.len() < 8 {
        return Err(Refused);
    }
    *buf = &buf[8..];
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{
        key_value, metrics_sample, Auth, InternalMetrics, KeyValue, LightStepSpan,
        LightStepSpanContext, Log, MetricsSample, Reference, Reporter, Timestamp,
    };
    use proptest::prelude::*;
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

    /// The walk judges `body` as prost does, and `ingest` answers what prost answers.
    fn agrees_with_prost(body: &[u8]) {
        let walked = Walk {
            decoded_bytes: 0,
            limit: usize::MAX,
            spans: 0,
        }
        .report(body);
        let decoded = ReportRequest::decode(body);
        assert_eq!(
            walked.is_ok(),
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

    /// What the walk says decoding `body` holds, and what it does hold.
    fn decoded_bytes(body: &[u8]) -> (usize, usize) {
        let mut walk = Walk {
            decoded_bytes: 0,
            limit: usize::MAX,
            spans: 0,
        };
        walk.report(body).expect("a valid report");
        let before = counting::live();
        let decoded = ReportRequest::decode(body).unwrap();
        let held = counting::live() - before;
        drop(decoded);
        (walk.decoded_bytes, usize::try_from(held).unwrap())
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
        let (said, held) = decoded_bytes(&report().encode_to_vec());
        assert!(held <= said, "held {held}, said {said}");
        // For what prost encodes (no field twice in a message), it is what decoding holds.
        assert!(said <= held + held / 8, "held {held}, said {said}");
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
        for body in [empty_spans, empty_tags, empty_entries] {
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
        let (said, held) = decoded_bytes(&body);
        assert!(held <= said, "held {held}, said {said}");
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
            let mut body = report().encode_to_vec();
            for (at, byte) in flips {
                let at = at.index(body.len());
                body[at] = byte;
            }
            agrees_with_prost(&body);
            body.truncate(cut.index(body.len() + 1));
            agrees_with_prost(&body);
        }

        #[test]
        fn added_fields_are_judged_as_prost_judges_them(
            level in prop::sample::select(LEVELS.to_vec()),
            extra in any_fields(),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut body = with_extra(level, &extra);
            agrees_with_prost(&body);
            body.truncate(cut.index(body.len() + 1));
            agrees_with_prost(&body);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn decoding_any_report_holds_no_more_than_the_walk_says(report in any_report()) {
            let body = report.encode_to_vec();
            agrees_with_prost(&body);
            let (said, held) = decoded_bytes(&body);
            prop_assert!(held <= said, "held {}, said {}", held, said);
            prop_assert!(said <= held + held / 8, "held {}, said {}", held, said);
        }
    }
}
