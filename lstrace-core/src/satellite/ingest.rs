//! Reading a report on arrival without decoding its spans.
//!
//! Decoding every span into owned strings took about 7,200 instructions per span (prost,
//! an allocation per string), on the core the traced program and its reporter need. On
//! arrival the satellite now decodes the report's header (reporter, auth, metrics: what the
//! answer depends on) and walks its spans, checking them against the schema without building
//! them; the spans are decoded when someone asks for them.
//!
//! The walk is at least as strict as prost: what it accepts, `ReportRequest::decode`
//! accepts (the tests check this on arbitrary and on damaged reports). What it refuses, or
//! cannot judge (groups, which prost checks against a recursion limit), goes to prost, whose
//! verdict and error message stand.

use crate::protocol::ReportRequest;
use prost::encoding::{check_wire_type, skip_field};
use prost::encoding::{DecodeContext, WireType};
use prost::{DecodeError, Message};

/// The field number of `ReportRequest.spans`.
const SPANS_FIELD: u32 = 3;

/// The fast path gives up: prost decides. Its reasons are prost's to give.
#[derive(Debug)]
struct GiveUp;

impl From<DecodeError> for GiveUp {
    fn from(_: DecodeError) -> Self {
        GiveUp
    }
}

/// A report read on arrival: every field but the spans, and how many spans it carries.
#[derive(Debug, PartialEq)]
pub(super) struct Ingested {
    /// The report without its spans.
    pub(super) header: ReportRequest,
    /// How many spans it carries.
    pub(super) spans: usize,
}

/// Reads a report body: its header and span count, or why it is not a `ReportRequest`.
///
/// # Errors
/// prost's error, when prost cannot decode the body.
pub(super) fn ingest(body: &[u8]) -> Result<Ingested, DecodeError> {
    walk_report(body).or_else(|_| {
        let mut header = ReportRequest::decode(body)?;
        let spans = std::mem::take(&mut header.spans).len();
        Ok(Ingested { header, spans })
    })
}

/// Decodes a body that [`ingest`] accepted.
pub(super) fn decode(body: &[u8]) -> ReportRequest {
    // `ingest` accepted it, so prost does too; an empty report would only hide a bug that
    // the tests of this module exist to catch.
    ReportRequest::decode(body).unwrap_or_default()
}

/// The fast path: header fields through prost, spans walked.
fn walk_report(mut body: &[u8]) -> Result<Ingested, GiveUp> {
    let mut header = ReportRequest::default();
    let mut spans = 0;
    while !body.is_empty() {
        let (tag, wire_type) = key(&mut body)?;
        if tag == SPANS_FIELD {
            message(wire_type, &mut body, span)?;
            spans += 1;
        } else {
            header.merge_field(tag, wire_type, &mut body, DecodeContext::default())?;
        }
    }
    Ok(Ingested { header, spans })
}

/// Walks the fields of one message, `known` checking those of its schema; the others are
/// skipped as prost skips them. Groups are left to prost.
fn fields(
    buf: &mut &[u8],
    known: impl Fn(u32, WireType, &mut &[u8]) -> Result<bool, GiveUp>,
) -> Result<(), GiveUp> {
    while !buf.is_empty() {
        let (tag, wire_type) = key(buf)?;
        if !known(tag, wire_type, buf)? {
            if matches!(wire_type, WireType::StartGroup | WireType::EndGroup) {
                return Err(GiveUp);
            }
            skip_field(wire_type, tag, buf, DecodeContext::default())?;
        }
    }
    Ok(())
}

/// A field's key, checked as prost checks it.
#[inline(always)]
fn key(buf: &mut &[u8]) -> Result<(u32, WireType), GiveUp> {
    let key = read_varint(buf)?;
    let tag = u32::try_from(key >> 3).map_err(|_| GiveUp)?;
    if tag == 0 {
        return Err(GiveUp);
    }
    Ok((tag, WireType::try_from(key & 7)?))
}

/// A varint of at most ten bytes that fits in 64 bits, as prost reads it.
#[inline(always)]
fn read_varint(buf: &mut &[u8]) -> Result<u64, GiveUp> {
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
                return Err(GiveUp);
            }
            *buf = &bytes[i + 1..];
            return Ok(value);
        }
    }
    Err(GiveUp)
}

#[inline(always)]
fn delimited<'a>(wire_type: WireType, buf: &mut &'a [u8]) -> Result<&'a [u8], GiveUp> {
    check_wire_type(WireType::LengthDelimited, wire_type)?;
    let len = read_varint(buf)?;
    if len > buf.len() as u64 {
        return Err(GiveUp);
    }
    let (content, rest) = buf.split_at(len as usize);
    *buf = rest;
    Ok(content)
}

#[inline(always)]
fn message(
    wire_type: WireType,
    buf: &mut &[u8],
    walk: fn(&mut &[u8]) -> Result<(), GiveUp>,
) -> Result<bool, GiveUp> {
    walk(&mut delimited(wire_type, buf)?)?;
    Ok(true)
}

#[inline(always)]
fn string(wire_type: WireType, buf: &mut &[u8]) -> Result<bool, GiveUp> {
    let bytes = delimited(wire_type, buf)?;
    if !bytes.is_ascii() {
        std::str::from_utf8(bytes).map_err(|_| GiveUp)?;
    }
    Ok(true)
}

/// Any varint field: int64, uint64, int32, bool and enum values all accept any varint.
#[inline(always)]
fn varint(wire_type: WireType, buf: &mut &[u8]) -> Result<bool, GiveUp> {
    check_wire_type(WireType::Varint, wire_type)?;
    read_varint(buf)?;
    Ok(true)
}

#[inline(always)]
fn fixed64(wire_type: WireType, buf: &mut &[u8]) -> Result<bool, GiveUp> {
    check_wire_type(WireType::SixtyFourBit, wire_type)?;
    if buf.len() < 8 {
        return Err(GiveUp);
    }
    *buf = &buf[8..];
    Ok(true)
}

/// `Span`.
fn span(buf: &mut &[u8]) -> Result<(), GiveUp> {
    fields(buf, |tag, wire_type, buf| match tag {
        1 => message(wire_type, buf, span_context),
        2 => string(wire_type, buf),
        3 => message(wire_type, buf, reference),
        4 => message(wire_type, buf, timestamp),
        5 => varint(wire_type, buf),
        6 => message(wire_type, buf, key_value),
        7 => message(wire_type, buf, log),
        _ => Ok(false),
    })
}

/// `SpanContext`, with its baggage map.
fn span_context(buf: &mut &[u8]) -> Result<(), GiveUp> {
    fields(buf, |tag, wire_type, buf| match tag {
        1 | 2 => varint(wire_type, buf),
        3 => message(wire_type, buf, string_map_entry),
        _ => Ok(false),
    })
}

/// An entry of a `map<string, string>`.
fn string_map_entry(buf: &mut &[u8]) -> Result<(), GiveUp> {
    fields(buf, |tag, wire_type, buf| match tag {
        1 | 2 => string(wire_type, buf),
        _ => Ok(false),
    })
}

/// `Reference`.
fn reference(buf: &mut &[u8]) -> Result<(), GiveUp> {
    fields(buf, |tag, wire_type, buf| match tag {
        1 => varint(wire_type, buf),
        2 => message(wire_type, buf, span_context),
        _ => Ok(false),
    })
}

/// `google.protobuf.Timestamp`.
fn timestamp(buf: &mut &[u8]) -> Result<(), GiveUp> {
    fields(buf, |tag, wire_type, buf| match tag {
        1 | 2 => varint(wire_type, buf),
        _ => Ok(false),
    })
}

/// `KeyValue`: a key and a oneof value.
fn key_value(buf: &mut &[u8]) -> Result<(), GiveUp> {
    fields(buf, |tag, wire_type, buf| match tag {
        1 | 2 | 6 => string(wire_type, buf),
        3 | 5 => varint(wire_type, buf),
        4 => fixed64(wire_type, buf),
        _ => Ok(false),
    })
}

/// `Log`.
fn log(buf: &mut &[u8]) -> Result<(), GiveUp> {
    fields(buf, |tag, wire_type, buf| match tag {
        1 => message(wire_type, buf, timestamp),
        2 => message(wire_type, buf, key_value),
        _ => Ok(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{
        key_value, Auth, KeyValue, Log, Reference, Reporter, Span, SpanContext, Timestamp,
    };
    use proptest::prelude::*;

    fn report() -> ReportRequest {
        let kv = |key: &str, value| KeyValue {
            key: key.into(),
            value: Some(value),
        };
        let span = |id: u64| Span {
            span_context: Some(SpanContext {
                trace_id: 7,
                span_id: id,
                baggage: [("user".to_owned(), "ann".to_owned())].into(),
            }),
            operation_name: format!("op {id}"),
            references: vec![Reference {
                relationship: 1,
                span_context: Some(SpanContext {
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
            internal_metrics: None,
        }
    }

    /// What `ingest` says of a body, checked against prost's decoding.
    fn agrees_with_prost(body: &[u8]) {
        let ingested = ingest(body);
        match ReportRequest::decode(body) {
            Ok(mut full) => {
                let spans = std::mem::take(&mut full.spans).len();
                assert_eq!(
                    ingested.expect("prost decodes it"),
                    Ingested {
                        header: full,
                        spans
                    }
                );
            }
            Err(e) => assert_eq!(ingested.expect_err("prost refuses it"), e),
        }
        if walk_report(body).is_ok() {
            assert!(ReportRequest::decode(body).is_ok(), "the walk is as strict");
        }
    }

    #[test]
    fn a_report_is_read_without_its_spans_and_decoded_whole_later() {
        let sent = report();
        let body = sent.encode_to_vec();
        let ingested = walk_report(&body).expect("the fast path reads it");
        assert_eq!(ingested.spans, 3);
        assert_eq!(
            ingested.header,
            ReportRequest {
                spans: Vec::new(),
                ..sent.clone()
            }
        );
        assert_eq!(decode(&body), sent);
    }

    #[test]
    fn garbage_is_refused_with_prosts_error() {
        for body in [
            &b"<html><body>502 Bad Gateway</body></html>"[..],
            b"\xff\xff\xff garbage",
            b"\x1a\x05ab", // a span longer than the body
        ] {
            assert!(ingest(body).is_err());
            agrees_with_prost(body);
        }
        // A span whose operation name is not UTF-8.
        let mut body = ReportRequest::default().encode_to_vec();
        body.extend_from_slice(b"\x1a\x04\x12\x02\xc3\x28");
        let error = ingest(&body).unwrap_err();
        assert!(error.to_string().contains("UTF-8"), "{error}");
        agrees_with_prost(&body);
    }

    #[test]
    fn groups_and_unknown_fields_are_judged_as_prost_judges_them() {
        let valid = report().encode_to_vec();
        // An unknown varint field and an unknown group inside a span, and at the top.
        for extra in [&b"\x78\x01"[..], b"\x7b\x78\x01\x7c", b"\x7b\x78\x01"] {
            let mut span = Span::default().encode_to_vec();
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
    }
}
