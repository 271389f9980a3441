//! The LightStep binary carrier, and Envoy's `x-ot-span-context` header that holds it.
//!
//! The carrier is the standard-alphabet base64 (with `=` padding) of a protobuf
//! `lightstep.BinaryCarrier { basic_ctx: BasicTracerCarrier { trace_id, span_id, sampled,
//! baggage_items } }` (see [`crate::protocol`]). It carries the low 64 bits of the trace id.
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
use crate::protocol::{BasicTracerCarrier, BinaryCarrier};
use prost::Message;

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
    let carrier = BinaryCarrier {
        deprecated_text_ctx: Vec::new(),
        basic_ctx: Some(BasicTracerCarrier {
            trace_id: context.trace_id().low(),
            span_id: context.span_id().get(),
            sampled: context.is_sampled(),
            baggage_items: baggage_to_inject(context, |_, _| true)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }),
    };
    base64_encode(&carrier.encode_to_vec())
}

/// The context in a base64 binary carrier; `None` if it holds no valid one.
#[must_use]
pub fn decode(carrier: &str) -> Option<SpanContext> {
    let carrier = carrier.trim();
    if carrier.len() > MAX_ENCODED_BYTES {
        return None;
    }
    let bytes = base64_decode(carrier)?;
    let basic = BinaryCarrier::decode(bytes.as_slice()).ok()?.basic_ctx?;
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
            .baggage_items
            .into_iter()
            .filter(|(key, value)| budget.admit_extracted(key, value))
            .fold(context, |ctx, (key, value)| {
                ctx.with_baggage_item(key, value)
            }),
    )
}

pub(super) fn inject_envoy(context: &SpanContext, carrier: &mut dyn Injector) {
    carrier.set(ENVOY_HEADER, encode(context));
}

pub(super) fn extract_envoy(carrier: &dyn Extractor) -> Option<SpanContext> {
    decode(carrier.get(ENVOY_HEADER)?)
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
        let zero_trace = BinaryCarrier {
            deprecated_text_ctx: Vec::new(),
            basic_ctx: Some(BasicTracerCarrier {
                span_id: 1,
                ..Default::default()
            }),
        };
        let zero_span = BinaryCarrier {
            deprecated_text_ctx: Vec::new(),
            basic_ctx: Some(BasicTracerCarrier {
                trace_id: 1,
                ..Default::default()
            }),
        };
        for carrier in [
            base64_encode(&zero_trace.encode_to_vec()),
            base64_encode(&zero_span.encode_to_vec()),
            base64_encode(&BinaryCarrier::default().encode_to_vec()),
            base64_encode(b"\xff\xff\xff"),
            "not base64!".to_owned(),
            "A".repeat(MAX_ENCODED_BYTES + 4),
        ] {
            assert_eq!(decode(&carrier), None, "{carrier}");
        }
    }
}
