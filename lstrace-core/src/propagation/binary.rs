//! The LightStep binary carrier, and Envoy's `x-ot-span-context` header that holds it.
//!
//! The carrier is the standard-alphabet base64 (with `=` padding) of a protobuf
//! `lightstep.BinaryCarrier { basic_ctx: BasicTracerCarrier { trace_id, span_id, sampled,
//! baggage_items } }`. It carries the low 64 bits of the trace id. The few fields are written
//! and read here by hand, so that propagation needs no protobuf library.
//!
//! Decoding accepts padding or its absence and surrounding whitespace, and refuses anything
//! else that is not base64, a carrier longer than [`MAX_ENCODED_BYTES`], a message that does
//! not decode, and zero ids. Baggage is taken within the propagation bounds, by key order.
//! Encoding writes the baggage items that fit the same bounds (in the context's order, whole
//! items), so that every carrier it writes stays within [`MAX_ENCODED_BYTES`] and decodes
//! whole.

use super::{baggage_to_inject, BaggageBudget, Extractor, Injector};
use crate::context::id::{SpanId, TraceId};
use crate::context::SpanContext;
use std::collections::BTreeMap;

/// Envoy's single header.
pub const ENVOY_HEADER: &str = "x-ot-span-context";

/// Longer carriers are refused without being decoded: this holds the largest baggage the
/// bounds allow ([`MAX_BAGGAGE_BYTES`](super::MAX_BAGGAGE_BYTES) and its protobuf framing)
/// with room to spare.
pub const MAX_ENCODED_BYTES: usize = 16 * 1024;

/// The base64 binary carrier of `context`, with the baggage items that fit the propagation
/// bounds (the others are counted in [`fields_left_out`](super::fields_left_out)).
///
/// ```
/// use lstrace_core::{propagation::binary, SpanContext, SpanId, TraceId};
///
/// let context = SpanContext::new(TraceId::from_u128(1), SpanId::new(2).unwrap(), true);
/// let carrier = binary::encode(&context);
/// assert_eq!(binary::decode(&carrier), Some(context));
/// ```
#[must_use]
pub fn encode(context: &SpanContext) -> String {
    // Ordered by key, so that one context always encodes to the same carrier.
    let baggage: BTreeMap<&str, &str> = baggage_to_inject(context, |_, _| true)
        .into_iter()
        .collect();
    let basic = Carrier {
        trace_id: context.trace_id().low(),
        span_id: context.span_id().get(),
        sampled: context.is_sampled(),
        baggage,
    };
    base64_encode(&basic.encode())
}

/// The context in a base64 binary carrier; `None` if it holds no valid one.
#[must_use]
pub fn decode(carrier: &str) -> Option<SpanContext> {
    let carrier = carrier.trim();
    if carrier.len() > MAX_ENCODED_BYTES {
        return None;
    }
    let bytes = base64_decode(carrier)?;
    let basic = Carrier::decode(&bytes)?;
    if basic.trace_id == 0 {
        return None;
    }
    let context = SpanContext::new(
        TraceId(u128::from(basic.trace_id)),
        SpanId::new(basic.span_id)?,
        basic.sampled,
    );
    let mut budget = BaggageBudget::new();
    Some(
        basic
            .baggage
            .into_iter()
            .filter(|(key, value)| budget.admit_extracted(key, value))
            .fold(context, |ctx, (key, value)| {
                ctx.with_baggage_item(key.to_owned(), value.to_owned())
            }),
    )
}

pub(super) fn inject_envoy(context: &SpanContext, carrier: &mut dyn Injector) {
    carrier.set(ENVOY_HEADER, encode(context));
}

pub(super) fn extract_envoy(carrier: &dyn Extractor) -> Option<SpanContext> {
    decode(carrier.get(ENVOY_HEADER)?)
}

/// `BinaryCarrier` field 2 (`basic_ctx`), a `BasicTracerCarrier`.
const BASIC_CTX: u64 = 2;
/// `BasicTracerCarrier`'s fields.
const TRACE_ID: u64 = 1;
const SPAN_ID: u64 = 2;
const SAMPLED: u64 = 3;
const BAGGAGE_ITEMS: u64 = 4;
/// A map entry's key and value.
const ENTRY_KEY: u64 = 1;
const ENTRY_VALUE: u64 = 2;

/// Protobuf wire types.
const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const FIXED32: u64 = 5;

/// The `BasicTracerCarrier` inside a `BinaryCarrier` (its deprecated field 1 is neither
/// written nor read), borrowing its strings.
#[derive(Debug, Default, PartialEq)]
struct Carrier<'a> {
    trace_id: u64,
    span_id: u64,
    sampled: bool,
    baggage: BTreeMap<&'a str, &'a str>,
}

impl<'a> Carrier<'a> {
    /// The `BinaryCarrier` message, written as protobuf encoders write it: fields in number
    /// order, zeros and `false` left out, and a map entry's empty key or value left out.
    fn encode(&self) -> Vec<u8> {
        let mut basic = Vec::new();
        if self.trace_id != 0 {
            put_key(&mut basic, TRACE_ID, FIXED64);
            basic.extend_from_slice(&self.trace_id.to_le_bytes());
        }
        if self.span_id != 0 {
            put_key(&mut basic, SPAN_ID, FIXED64);
            basic.extend_from_slice(&self.span_id.to_le_bytes());
        }
        if self.sampled {
            put_key(&mut basic, SAMPLED, VARINT);
            basic.push(1);
        }
        for (key, value) in &self.baggage {
            let mut entry = Vec::with_capacity(key.len() + value.len() + 6);
            for (field, text) in [(ENTRY_KEY, key), (ENTRY_VALUE, value)] {
                if !text.is_empty() {
                    put_bytes(&mut entry, field, text.as_bytes());
                }
            }
            put_bytes(&mut basic, BAGGAGE_ITEMS, &entry);
        }
        let mut message = Vec::with_capacity(basic.len() + 3);
        put_bytes(&mut message, BASIC_CTX, &basic);
        message
    }

    /// A `BinaryCarrier` message's `basic_ctx`; `None` if the bytes are not a well-formed
    /// message of this schema (a known field with another wire type, a string that is not
    /// UTF-8, a truncated field) or hold no `basic_ctx`. Unknown fields are skipped; a field
    /// given twice keeps its last value, and two `basic_ctx` merge, as protobuf decoders do.
    fn decode(mut bytes: &'a [u8]) -> Option<Self> {
        let mut basic: Option<Carrier<'a>> = None;
        while !bytes.is_empty() {
            let (field, wire) = take_key(&mut bytes)?;
            if (field, wire) == (BASIC_CTX, LEN) {
                basic
                    .get_or_insert_with(Carrier::default)
                    .merge(take_len(&mut bytes)?)?;
            } else if field == BASIC_CTX {
                return None;
            } else {
                skip(&mut bytes, wire)?;
            }
        }
        basic
    }

    /// Reads a `BasicTracerCarrier`'s fields into `self`.
    fn merge(&mut self, mut bytes: &'a [u8]) -> Option<()> {
        while !bytes.is_empty() {
            match take_key(&mut bytes)? {
                (TRACE_ID, FIXED64) => self.trace_id = take_fixed64(&mut bytes)?,
                (SPAN_ID, FIXED64) => self.span_id = take_fixed64(&mut bytes)?,
                (SAMPLED, VARINT) => self.sampled = take_varint(&mut bytes)? != 0,
                (BAGGAGE_ITEMS, LEN) => {
                    let (key, value) = entry(take_len(&mut bytes)?)?;
                    self.baggage.insert(key, value);
                }
                (TRACE_ID | SPAN_ID | SAMPLED | BAGGAGE_ITEMS, _) => return None,
                (_, wire) => skip(&mut bytes, wire)?,
            }
        }
        Some(())
    }
}

/// A map entry's key and value (empty when left out).
fn entry(mut bytes: &[u8]) -> Option<(&str, &str)> {
    let (mut key, mut value) = ("", "");
    while !bytes.is_empty() {
        match take_key(&mut bytes)? {
            (ENTRY_KEY, LEN) => key = std::str::from_utf8(take_len(&mut bytes)?).ok()?,
            (ENTRY_VALUE, LEN) => value = std::str::from_utf8(take_len(&mut bytes)?).ok()?,
            (ENTRY_KEY | ENTRY_VALUE, _) => return None,
            (_, wire) => skip(&mut bytes, wire)?,
        }
    }
    Some((key, value))
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_key(out: &mut Vec<u8>, field: u64, wire: u64) {
    put_varint(out, (field << 3) | wire);
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_key(out, field, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A varint of at most ten bytes.
fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            *bytes = &bytes[i + 1..];
            return Some(value);
        }
    }
    None
}

/// A field's number and wire type; field 0 is not a field.
fn take_key(bytes: &mut &[u8]) -> Option<(u64, u64)> {
    let key = take_varint(bytes)?;
    let field = key >> 3;
    (field != 0).then_some((field, key & 7))
}

fn take_fixed64(bytes: &mut &[u8]) -> Option<u64> {
    let (value, rest) = bytes.split_first_chunk::<8>()?;
    *bytes = rest;
    Some(u64::from_le_bytes(*value))
}

fn take_len<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(take_varint(bytes)?).ok()?;
    if len > bytes.len() {
        return None;
    }
    let (value, rest) = bytes.split_at(len);
    *bytes = rest;
    Some(value)
}

/// Skips a field this decoder does not read; groups (wire types 3 and 4, deprecated) are
/// refused.
fn skip(bytes: &mut &[u8], wire: u64) -> Option<()> {
    match wire {
        VARINT => take_varint(bytes).map(drop),
        FIXED64 => take_fixed64(bytes).map(drop),
        LEN => take_len(bytes).map(drop),
        FIXED32 => {
            *bytes = bytes.get(4..)?;
            Some(())
        }
        _ => None,
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 section 4).
fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_value(c: u8) -> Option<u32> {
    let value = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(value))
}

/// Decodes standard base64, padded or not; `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let unpadded = match bytes.len() % 4 {
        0 if bytes.ends_with(b"==") => &bytes[..bytes.len() - 2],
        0 if bytes.ends_with(b"=") => &bytes[..bytes.len() - 1],
        1 => return None,
        _ => bytes,
    };
    let mut out = Vec::with_capacity(unpadded.len() / 4 * 3 + 2);
    for chunk in unpadded.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= base64_value(c)? << (18 - 6 * i);
        }
        let [_, b0, b1, b2] = n.to_be_bytes();
        out.extend_from_slice(&[b0, b1, b2][..chunk.len() - 1]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
            assert_eq!(
                base64_decode(encoded.trim_end_matches('=')).unwrap(),
                plain.as_bytes()
            );
        }
        assert_eq!(base64_encode(&[0xfb, 0xff]), "+/8=");
        assert_eq!(base64_decode("+/8="), Some(vec![0xfb, 0xff]));
    }

    #[test]
    fn base64_refuses_what_is_not_base64() {
        for text in ["Z", "Zm9v=", "Zm9=v", "Zm-_", "Zm9v Zg==", "====", "Zg=\n"] {
            assert_eq!(base64_decode(text), None, "{text:?}");
        }
    }

    /// Built by hand from the schema: field 2 (basic_ctx) holding fixed64 trace id
    /// 0x4bf92f3577b34da6, fixed64 span id 0x00f067aa0ba902b7, sampled, baggage user=ann.
    const GOLDEN: &str = "EiEJpk2zdzUv+UsRtwKpC6pn8AAYASILCgR1c2VyEgNhbm4=";

    #[test]
    fn golden_carrier() {
        let context = SpanContext::new(
            TraceId(0x4bf9_2f35_77b3_4da6),
            SpanId::new(0x00f0_67aa_0ba9_02b7).unwrap(),
            true,
        )
        .with_baggage_item("user", "ann");
        assert_eq!(encode(&context), GOLDEN);
        assert_eq!(decode(GOLDEN), Some(context.clone()));
        assert_eq!(decode(&format!("  {GOLDEN}\n")), Some(context));
    }

    #[test]
    fn keeps_the_low_half_of_the_trace_id() {
        let context = SpanContext::new(
            TraceId(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            SpanId::new(7).unwrap(),
            false,
        );
        let back = decode(&encode(&context)).unwrap();
        assert_eq!(back.trace_id(), TraceId(0xa3ce_929d_0e0e_4736));
        assert!(!back.is_sampled());
    }

    /// Baggage that fills the bounds (64 items, 8,192 bytes), each entry's length a two-byte
    /// varint.
    #[test]
    fn the_largest_baggage_within_the_bounds_encodes_within_the_limit() {
        use crate::propagation::{MAX_BAGGAGE_BYTES, MAX_BAGGAGE_ITEMS};
        let value_len = MAX_BAGGAGE_BYTES / MAX_BAGGAGE_ITEMS - 3;
        let context = (0..MAX_BAGGAGE_ITEMS).fold(
            SpanContext::new(TraceId(1), SpanId::new(2).unwrap(), true),
            |ctx, i| ctx.with_baggage_item(format!("{i:03}"), "v".repeat(value_len)),
        );
        let carrier = encode(&context);
        assert!(carrier.len() <= MAX_ENCODED_BYTES, "{}", carrier.len());
        assert_eq!(decode(&carrier), Some(context));
    }

    #[test]
    fn baggage_beyond_the_bounds_is_left_out_whole_and_in_order() {
        let context = (0..5_000).fold(
            SpanContext::new(TraceId(1), SpanId::new(2).unwrap(), true),
            |ctx, i| ctx.with_baggage_item(format!("k{i}"), "v"),
        );
        let carrier = encode(&context);
        assert!(carrier.len() <= MAX_ENCODED_BYTES, "{}", carrier.len());
        let back = decode(&carrier).expect("what encode writes, decode reads");
        let mut expected: Vec<_> = context
            .baggage()
            .take(super::super::MAX_BAGGAGE_ITEMS)
            .collect();
        expected.sort_unstable();
        assert_eq!(back.baggage().collect::<Vec<_>>(), expected);
        // The same context, the same carrier.
        assert_eq!(encode(&context), carrier);
    }

    #[test]
    fn refuses_invalid_carriers() {
        let zero_trace = Carrier {
            span_id: 1,
            ..Carrier::default()
        };
        let zero_span = Carrier {
            trace_id: 1,
            ..Carrier::default()
        };
        let mut truncated = Carrier {
            trace_id: 1,
            span_id: 2,
            ..Carrier::default()
        }
        .encode();
        truncated.pop();
        let in_basic_ctx = |fields: &[u8]| {
            let mut ids = vec![0x09, 1, 0, 0, 0, 0, 0, 0, 0, 0x11, 2, 0, 0, 0, 0, 0, 0, 0];
            ids.extend_from_slice(fields);
            let mut message = Vec::new();
            put_bytes(&mut message, BASIC_CTX, &ids);
            base64_encode(&message)
        };
        // The same ids are read when nothing follows them.
        assert!(decode(&in_basic_ctx(&[])).is_some());
        for carrier in [
            base64_encode(&zero_trace.encode()),
            base64_encode(&zero_span.encode()),
            base64_encode(&truncated),
            base64_encode(b""),
            base64_encode(b"\xff\xff\xff"),
            // basic_ctx as a varint.
            base64_encode(b"\x10\x01"),
            // A trace id as a varint; a group; a baggage key that is not UTF-8.
            in_basic_ctx(b"\x08\x01"),
            in_basic_ctx(b"\x33\x34"),
            in_basic_ctx(b"\x22\x04\x0a\x02\xff\xfe"),
            "not base64!".to_owned(),
            "A".repeat(MAX_ENCODED_BYTES + 4),
        ] {
            assert_eq!(decode(&carrier), None, "{carrier}");
        }
    }

    #[test]
    fn skips_unknown_fields_and_keeps_the_last_value() {
        let mut bytes = b"\x0a\x02hi\x28\x07".to_vec(); // deprecated_text_ctx, field 5
        let mut basic = vec![0x09];
        basic.extend_from_slice(&9u64.to_le_bytes());
        basic.extend_from_slice(&[0x3d, 1, 2, 3, 4]); // an unknown fixed32 field
        basic.push(0x09);
        basic.extend_from_slice(&3u64.to_le_bytes());
        basic.push(0x11);
        basic.extend_from_slice(&4u64.to_le_bytes());
        put_bytes(&mut bytes, BASIC_CTX, &basic);
        let expected = SpanContext::new(TraceId(3), SpanId::new(4).unwrap(), false);
        assert_eq!(decode(&base64_encode(&bytes)), Some(expected));
    }

    /// The prost messages of the LightStep schema are the oracle: both encode the same bytes,
    /// and each reads what the other writes.
    #[cfg(feature = "reporter")]
    #[test]
    fn agrees_with_the_schema_messages() {
        use crate::protocol::lightstep::{BasicTracerCarrier, BinaryCarrier};
        use prost::Message;

        let baggage = [
            ("", "v"),
            ("k", ""),
            ("user", "ann"),
            ("\u{e9}", "\u{1f600}"),
        ];
        let ours = Carrier {
            trace_id: u64::MAX,
            span_id: 0x00f0_67aa_0ba9_02b7,
            sampled: true,
            baggage: baggage.into_iter().collect(),
        };
        let theirs = BinaryCarrier {
            deprecated_text_ctx: Vec::new(),
            basic_ctx: Some(BasicTracerCarrier {
                trace_id: ours.trace_id,
                span_id: ours.span_id,
                sampled: true,
                baggage_items: baggage
                    .iter()
                    .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            }),
        };
        assert_eq!(ours.encode(), theirs.encode_to_vec());
        assert_eq!(Carrier::decode(&theirs.encode_to_vec()), Some(ours));
        let empty = BinaryCarrier {
            deprecated_text_ctx: vec![b"old".to_vec()],
            basic_ctx: Some(BasicTracerCarrier::default()),
        };
        assert_eq!(
            Carrier::decode(&empty.encode_to_vec()),
            Some(Carrier::default())
        );
    }
}
