//! W3C trace context (`traceparent`, `tracestate`) and W3C baggage (`baggage`).
//!
//! `traceparent: {version}-{trace-id}-{parent-id}-{trace-flags}`: lstrace writes version
//! `00`, the 32-digit trace id, the span id and flags `01` (sampled) or `00`. It reads what
//! the specification allows: lower-case hex only, non-zero ids, version `ff` refused, version
//! `00` exactly 55 characters, a later version at least 55 whose first four fields are read
//! (and a `-` after them if it is longer), flag bit `0x01` = sampled. A request with two
//! `traceparent` headers carries no valid context.
//!
//! `tracestate` is other vendors' data: it is kept as received (several headers joined with
//! `,`) and written back unchanged by this context's children. One longer than
//! [`MAX_TRACE_STATE_BYTES`] or holding anything but visible
//! ASCII and spaces is left out; the trace continues without it.
//!
//! `baggage: key=value,key2=value2;property`: written when the context has baggage (values
//! percent-encoded, `+` included, since some peers decode a `+` as a space; items whose key
//! is not an HTTP token left out, and items beyond the baggage bounds), read with the context
//! (properties ignored, values percent-decoded, within the baggage bounds). A trace state
//! that extraction would leave out is not written.

use super::{
    baggage_to_inject, leave_out, parse_lower_hex, BaggageBudget, Extractor, Injector,
    MAX_TRACE_STATE_BYTES,
};
use crate::context::id::{SpanId, TraceId};
use crate::context::SpanContext;
use std::fmt::Write;

/// The `traceparent` header.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header.
pub const TRACESTATE: &str = "tracestate";
/// The W3C `baggage` header.
pub const BAGGAGE: &str = "baggage";

const SAMPLED_FLAG: u8 = 0x01;

pub(super) fn inject(context: &SpanContext, carrier: &mut dyn Injector) {
    let flags = if context.is_sampled() {
        SAMPLED_FLAG
    } else {
        0
    };
    carrier.set(
        TRACEPARENT,
        format!(
            "00-{:032x}-{:016x}-{flags:02x}",
            context.trace_id().0,
            context.span_id().get()
        ),
    );
    let state = context
        .trace_state()
        .unwrap_or_default()
        .trim_matches([' ', '\t']);
    if state.len() <= MAX_TRACE_STATE_BYTES && is_trace_state_text(state) {
        if !state.is_empty() {
            carrier.set(TRACESTATE, state.to_owned());
        }
    } else {
        leave_out(1);
    }
    let mut baggage = String::new();
    for (key, value) in baggage_to_inject(context, |key, _| is_token(key)) {
        if !baggage.is_empty() {
            baggage.push(',');
        }
        baggage.push_str(key);
        baggage.push('=');
        percent_encode(value, &mut baggage);
    }
    if !baggage.is_empty() {
        carrier.set(BAGGAGE, baggage);
    }
}

pub(super) fn extract(carrier: &dyn Extractor) -> Option<SpanContext> {
    let mut traceparent = None;
    let mut count = 0;
    carrier.for_each(&mut |key, value| {
        if key.eq_ignore_ascii_case(TRACEPARENT) {
            count += 1;
            traceparent = Some(value);
        }
    });
    if count != 1 {
        return None;
    }
    let (trace_id, span_id, flags) = parse_traceparent(traceparent?)?;
    let context = SpanContext::new(trace_id, span_id, flags & SAMPLED_FLAG != 0)
        .with_trace_state(trace_state(carrier));
    Some(extract_baggage(carrier, context))
}

fn parse_traceparent(value: &str) -> Option<(TraceId, SpanId, u8)> {
    let value = value.trim_matches([' ', '\t']);
    let bytes = value.as_bytes();
    let version = parse_lower_hex(value.get(0..2)?, 2)?;
    let well_sized = match version {
        0xff => false,
        0 => bytes.len() == 55,
        _ => bytes.len() == 55 || bytes.get(55) == Some(&b'-'),
    };
    if !well_sized || [2, 35, 52].iter().any(|&at| bytes.get(at) != Some(&b'-')) {
        return None;
    }
    let trace_id = parse_lower_hex(value.get(3..35)?, 32).filter(|&id| id != 0)?;
    let span_id = SpanId::new(u64::try_from(parse_lower_hex(value.get(36..52)?, 16)?).ok()?)?;
    let flags = u8::try_from(parse_lower_hex(value.get(53..55)?, 2)?).ok()?;
    Some((TraceId(trace_id), span_id, flags))
}

/// Whether a `tracestate` value (without its surrounding blanks) is text that a trace state
/// can hold: visible ASCII and spaces.
fn is_trace_state_text(value: &str) -> bool {
    value.bytes().all(|b| matches!(b, b' '..=b'~'))
}

/// Every `tracestate` header, joined; `None` when absent, empty, too long or not text.
fn trace_state(carrier: &dyn Extractor) -> Option<String> {
    let mut joined = String::new();
    let mut valid = true;
    carrier.for_each(&mut |key, value| {
        let value = value.trim_matches([' ', '\t']);
        if !valid || value.is_empty() || !key.eq_ignore_ascii_case(TRACESTATE) {
            return;
        }
        let separator = usize::from(!joined.is_empty());
        if joined.len() + separator + value.len() > MAX_TRACE_STATE_BYTES
            || !is_trace_state_text(value)
        {
            valid = false;
            return;
        }
        if separator == 1 {
            joined.push(',');
        }
        joined.push_str(value);
    });
    (valid && !joined.is_empty()).then_some(joined)
}

fn extract_baggage(carrier: &dyn Extractor, context: SpanContext) -> SpanContext {
    let mut budget = BaggageBudget::new();
    let mut items = Vec::new();
    carrier.for_each(&mut |key, value| {
        if !key.eq_ignore_ascii_case(BAGGAGE) {
            return;
        }
        for member in value.split(',') {
            let pair = member.split(';').next().unwrap_or_default();
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let key = key.trim_matches([' ', '\t']);
            let value = value.trim_matches([' ', '\t']);
            if !is_token(key) {
                continue;
            }
            // A value longer than this cannot decode to one within the bounds.
            if value.len() > 3 * super::MAX_BAGGAGE_VALUE_BYTES {
                leave_out(1);
                continue;
            }
            let value = percent_decode(value);
            if budget.admit_extracted(key, &value) {
                items.push((key.to_owned(), value));
            }
        }
    });
    items.into_iter().fold(context, |ctx, (key, value)| {
        ctx.with_baggage_item(key, value)
    })
}

/// An HTTP token (RFC 9110 `tchar`s), which W3C baggage keys are.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// W3C baggage's `baggage-octet`s pass as they are, but for `%` and `+` (which peers that
/// decode form-style read as a space); every other byte is encoded.
fn percent_encode(value: &str, out: &mut String) {
    for b in value.bytes() {
        let plain =
            matches!(b, 0x21 | 0x23..=0x2a | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e) && b != b'%';
        if plain {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Decodes `%XX` sequences; a `%` not followed by two hex digits stays as it is, and bytes
/// that are not UTF-8 become U+FFFD, as the W3C baggage specification asks.
fn percent_decode(value: &str) -> String {
    if !value.contains('%') {
        return value.to_owned();
    }
    let bytes = value.as_bytes();
    let hex = |at: usize| bytes.get(at).and_then(|&b| char::from(b).to_digit(16));
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                // Two hex digits make at most 0xff.
                out.push(u8::try_from((high << 4) | low).unwrap_or(u8::MAX));
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::propagation::tests::map;
    use std::collections::HashMap;

    fn parent(value: &str) -> Option<SpanContext> {
        extract(&map(&[("traceparent", value)]))
    }

    #[test]
    fn specification_examples() {
        let ctx = parent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(
            ctx.trace_id(),
            TraceId(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736)
        );
        assert_eq!(ctx.span_id().get(), 0x00f0_67aa_0ba9_02b7);
        assert!(ctx.is_sampled());
        let ctx = parent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        assert!(!ctx.is_sampled());

        let mut out = HashMap::new();
        inject(&ctx.with_sampled(true), &mut out);
        assert_eq!(
            out,
            map(&[(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            )])
        );
    }

    #[test]
    fn trace_state_passes_through_unchanged() {
        let carrier = map(&[
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
            ("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
        ]);
        let ctx = extract(&carrier).unwrap();
        assert_eq!(
            ctx.trace_state(),
            Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
        );
        let mut out = HashMap::new();
        inject(&ctx, &mut out);
        assert_eq!(out["tracestate"], "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    }

    #[test]
    fn several_trace_state_headers_are_joined() {
        let mut headers = http::HeaderMap::new();
        headers.append(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                .parse()
                .unwrap(),
        );
        headers.append("tracestate", "rojo=00f067aa0ba902b7".parse().unwrap());
        headers.append("tracestate", "congo=t61rcWkgMzE".parse().unwrap());
        let ctx = extract(&headers).unwrap();
        assert_eq!(
            ctx.trace_state(),
            Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        );
    }

    #[test]
    fn oversized_or_binary_trace_state_is_left_out() {
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let long = format!("a={}", "b".repeat(MAX_TRACE_STATE_BYTES));
        let ctx = extract(&map(&[("traceparent", tp), ("tracestate", &long)])).unwrap();
        assert_eq!(ctx.trace_state(), None);
        let ctx = extract(&map(&[("traceparent", tp), ("tracestate", "a=\u{1}")])).unwrap();
        assert_eq!(ctx.trace_state(), None);
        let ctx = extract(&map(&[("traceparent", tp), ("tracestate", "")])).unwrap();
        assert_eq!(ctx.trace_state(), None);
    }

    #[test]
    fn future_versions_parse_the_first_four_fields() {
        let ctx =
            parent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-the-future-holds")
                .unwrap();
        assert_eq!(ctx.span_id().get(), 0x00f0_67aa_0ba9_02b7);
        assert!(ctx.is_sampled());
        assert!(parent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_some());
        assert_eq!(
            parent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.future"),
            None
        );
    }

    #[test]
    fn invalid_traceparents() {
        for value in [
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-é1",
            "",
            "00",
        ] {
            assert_eq!(parent(value), None, "{value}");
        }
    }

    #[test]
    fn two_traceparents_carry_nothing() {
        let mut headers = http::HeaderMap::new();
        for _ in 0..2 {
            headers.append(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                    .parse()
                    .unwrap(),
            );
        }
        assert_eq!(extract(&headers), None);
    }

    #[test]
    fn baggage_round_trips_percent_encoded() {
        let ctx = SpanContext::new(TraceId(1), SpanId::new(2).unwrap(), true)
            .with_baggage_item("user", "ann lee, 100%; ok")
            .with_baggage_item("city", "Zürich")
            .with_baggage_item("not a token", "skipped");
        let mut out = HashMap::new();
        inject(&ctx, &mut out);
        assert_eq!(
            out["baggage"],
            "user=ann%20lee%2C%20100%25%3B%20ok,city=Z%C3%BCrich"
        );
        let back = extract(&out).unwrap();
        assert_eq!(
            back.baggage().collect::<Vec<_>>(),
            [("user", "ann lee, 100%; ok"), ("city", "Zürich")]
        );
    }

    #[test]
    fn baggage_specification_example() {
        let carrier = map(&[
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            (
                "baggage",
                "userId=alice, serverNode=DF%2028 ,isProduction=false;prop=1,bad key=x,noequals,p=%zz%",
            ),
        ]);
        let ctx = extract(&carrier).unwrap();
        assert_eq!(
            ctx.baggage().collect::<Vec<_>>(),
            [
                ("userId", "alice"),
                ("serverNode", "DF 28"),
                ("isProduction", "false"),
                ("p", "%zz%"),
            ]
        );
    }

    #[test]
    fn plus_is_percent_encoded() {
        let ctx = SpanContext::new(TraceId(1), SpanId::new(2).unwrap(), true)
            .with_baggage_item("q", "a+b c");
        let mut out = HashMap::new();
        inject(&ctx, &mut out);
        // Form-style decoders (OpenTelemetry Python) would read a literal `+` as a space.
        assert_eq!(out["baggage"], "q=a%2Bb%20c");
        let back = extract(&out).unwrap();
        assert_eq!(back.baggage_item("q"), Some("a+b c"));
        // A literal `+` that a peer sent stays a `+`.
        let carrier = map(&[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("baggage", "q=a+b"),
        ]);
        assert_eq!(extract(&carrier).unwrap().baggage_item("q"), Some("a+b"));
    }

    #[test]
    fn a_trace_state_that_extraction_would_refuse_is_not_written() {
        let ctx = SpanContext::new(TraceId(1), SpanId::new(2).unwrap(), true);
        for (state, written) in [
            (" a=1\t".to_owned(), Some("a=1")),
            ("a=\u{1}".to_owned(), None),
            ("a=Zürich".to_owned(), None),
            (format!("a={}", "b".repeat(MAX_TRACE_STATE_BYTES)), None),
            ("  ".to_owned(), None),
        ] {
            let mut out = HashMap::new();
            inject(&ctx.clone().with_trace_state(Some(state.clone())), &mut out);
            assert_eq!(
                out.get(TRACESTATE).map(String::as_str),
                written,
                "{state:?}"
            );
            assert_eq!(extract(&out).unwrap().trace_state(), written, "{state:?}");
        }
    }

    #[test]
    fn percent_decoding_replaces_invalid_utf8() {
        assert_eq!(percent_decode("%ff%41"), "\u{fffd}A");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%+1"), "%+1");
    }
}
