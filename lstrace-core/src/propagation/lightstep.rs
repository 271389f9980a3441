//! LightStep's text map / HTTP headers format (the OpenTracing basic tracers' `ot-tracer-*`).
//!
//! Injects `ot-tracer-traceid` (the low 64 bits of the trace id, 16 lower-case hex digits),
//! `ot-tracer-spanid` (16 digits), `ot-tracer-sampled` (`true`/`false`) and one
//! `ot-baggage-<key>` per baggage item, its key in lower case (HTTP does not keep the case of
//! header names). Baggage is written within the propagation bounds; an item whose key differs
//! only in case from an item already written is left out, and over HTTP, so are items whose
//! key or value cannot be a header (W3C `baggage` carries them, percent-encoded).
//!
//! Extracts leniently, as LightStep's tracers do: hex digits of either case, unpadded, a trace
//! id of up to 32 digits (all 128 bits are kept), any case of header name, and a sampled flag
//! that is `false` only for `false` or `0` (any case), so `true`, `1` and a missing flag all
//! mean sampled. Both ids are required and must not be zero. Baggage keys come back in lower
//! case (HTTP does not keep their case).

use super::{baggage_to_inject, leave_out, parse_hex, BaggageBudget, Extractor, Injector};
use crate::context::id::{SpanId, TraceId};
use crate::context::SpanContext;

/// The trace id header.
pub const TRACE_ID: &str = "ot-tracer-traceid";
/// The span id header.
pub const SPAN_ID: &str = "ot-tracer-spanid";
/// The sampled flag header.
pub const SAMPLED: &str = "ot-tracer-sampled";
/// The prefix of baggage headers.
pub const BAGGAGE_PREFIX: &str = "ot-baggage-";

pub(super) fn inject(context: &SpanContext, carrier: &mut dyn Injector) {
    carrier.set(TRACE_ID, format!("{:016x}", context.trace_id().low()));
    carrier.set(SPAN_ID, format!("{:016x}", context.span_id().get()));
    carrier.set(SAMPLED, context.is_sampled().to_string());
    let mut written: Vec<String> = Vec::new();
    for (key, value) in baggage_to_inject(context, |_, _| true) {
        let key = key.to_ascii_lowercase();
        // Extraction would make one item of both.
        if written.contains(&key) {
            leave_out(1);
            continue;
        }
        carrier.set(&format!("{BAGGAGE_PREFIX}{key}"), value.to_owned());
        written.push(key);
    }
}

pub(super) fn extract(carrier: &dyn Extractor) -> Option<SpanContext> {
    let trace_id = parse_hex(carrier.get(TRACE_ID)?.trim(), 32).filter(|&id| id != 0)?;
    let span_id = parse_hex(carrier.get(SPAN_ID)?.trim(), 16)
        .and_then(|id| SpanId::new(u64::try_from(id).ok()?))?;
    let sampled = carrier.get(SAMPLED).is_none_or(|flag| {
        let flag = flag.trim();
        !(flag.eq_ignore_ascii_case("false") || flag == "0")
    });
    let mut items = Vec::new();
    carrier.for_each(&mut |key, value| {
        let is_baggage = key.len() > BAGGAGE_PREFIX.len()
            && key
                .get(..BAGGAGE_PREFIX.len())
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(BAGGAGE_PREFIX));
        if is_baggage {
            items.push((&key[BAGGAGE_PREFIX.len()..], value));
        }
    });
    // A text map's order is arbitrary: sorting makes the choice under the bounds stable.
    items.sort_unstable();
    let mut budget = BaggageBudget::new();
    let context = SpanContext::new(TraceId(trace_id), span_id, sampled);
    Some(
        items
            .into_iter()
            .filter(|(key, value)| budget.admit_extracted(key, value))
            .fold(context, |ctx, (key, value)| {
                ctx.with_baggage_item(key.to_ascii_lowercase(), value)
            }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::propagation::tests::map;
    use std::collections::HashMap;

    #[test]
    fn injects_sixteen_lower_case_digits() {
        let ctx = SpanContext::new(
            TraceId(0xaef5_705a_0900_4083_8f13_59eb_afa5_c0c6),
            SpanId::new(0xab).unwrap(),
            true,
        )
        .with_baggage_item("user", "ann");
        let mut carrier = HashMap::new();
        inject(&ctx, &mut carrier);
        assert_eq!(
            carrier,
            map(&[
                ("ot-tracer-traceid", "8f1359ebafa5c0c6"),
                ("ot-tracer-spanid", "00000000000000ab"),
                ("ot-tracer-sampled", "true"),
                ("ot-baggage-user", "ann"),
            ])
        );
        inject(&ctx.with_sampled(false), &mut carrier);
        assert_eq!(carrier["ot-tracer-sampled"], "false");
    }

    #[test]
    fn extracts_leniently() {
        let ctx = extract(&map(&[
            ("OT-Tracer-TraceId", "ABC"),
            ("ot-tracer-spanid", "1F"),
            ("Ot-Baggage-User", "ann"),
        ]))
        .unwrap();
        assert_eq!(ctx.trace_id(), TraceId(0xabc));
        assert_eq!(ctx.span_id().get(), 0x1f);
        assert!(ctx.is_sampled(), "a missing flag means sampled");
        assert_eq!(ctx.baggage().collect::<Vec<_>>(), [("user", "ann")]);

        for (flag, sampled) in [
            ("true", true),
            ("1", true),
            ("True", true),
            ("false", false),
            ("FALSE", false),
            ("0", false),
        ] {
            let ctx = extract(&map(&[
                ("ot-tracer-traceid", "1"),
                ("ot-tracer-spanid", "2"),
                ("ot-tracer-sampled", flag),
            ]))
            .unwrap();
            assert_eq!(ctx.is_sampled(), sampled, "{flag}");
        }
    }

    #[test]
    fn keeps_the_high_half_of_a_128_bit_trace_id() {
        let ctx = extract(&map(&[
            ("ot-tracer-traceid", "aef5705a090040838f1359ebafa5c0c6"),
            ("ot-tracer-spanid", "aef5705a09004083"),
        ]))
        .unwrap();
        assert_eq!(
            ctx.trace_id(),
            TraceId(0xaef5_705a_0900_4083_8f13_59eb_afa5_c0c6)
        );
    }

    #[test]
    fn rejects_invalid_ids() {
        for (trace, span) in [
            ("0", "1"),
            ("1", "0"),
            ("", "1"),
            ("1", ""),
            ("xyz", "1"),
            ("1", "-1"),
            (&"1".repeat(33), "1"),
            ("1", &"1".repeat(17)),
        ] {
            let carrier = map(&[("ot-tracer-traceid", trace), ("ot-tracer-spanid", span)]);
            assert_eq!(extract(&carrier), None, "{trace} {span}");
        }
        assert_eq!(extract(&map(&[("ot-tracer-traceid", "1")])), None);
        assert_eq!(extract(&map(&[("ot-tracer-spanid", "1")])), None);
    }

    #[test]
    fn baggage_is_bounded() {
        let mut carrier = map(&[("ot-tracer-traceid", "1"), ("ot-tracer-spanid", "2")]);
        for i in 0..1000 {
            carrier.insert(format!("ot-baggage-k{i:04}"), "v".repeat(100));
        }
        let ctx = extract(&carrier).unwrap();
        let items: Vec<_> = ctx.baggage().collect();
        let bytes: usize = items.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(items.len() <= super::super::MAX_BAGGAGE_ITEMS);
        assert!(bytes <= super::super::MAX_BAGGAGE_BYTES);
        // The choice does not depend on the map's order.
        assert_eq!(items.first(), Some(&("k0000", "v".repeat(100).as_str())));
    }
}
