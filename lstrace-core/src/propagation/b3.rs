//! Zipkin B3, in its two forms: one header per field, and the single `b3` header.
//!
//! Multi-header: `x-b3-traceid` (32 hex digits, or 16 for a trace id whose high half is
//! zero), `x-b3-spanid` (16), `x-b3-sampled` (`1`/`0`); extraction also reads `x-b3-flags`
//! (`1` = debug, which implies sampled) and, as the B3 specification asks, the older
//! `true`/`false` sampled values. `x-b3-parentspanid` is not needed to continue a trace and
//! is neither written nor read.
//!
//! Single header: `b3: {traceid}-{spanid}[-{sampled}[-{parentspanid}]]` with sampled one of
//! `1`, `0`, `d` (debug); or a bare decision `b3: 0`, `1` or `d`.
//!
//! Extraction is as lenient as Zipkin's and LightStep's B3 readers about ids (hex digits of
//! either case, unpadded) and strict about the rest: ids must be non-zero hex of at most 32
//! (trace) or 16 (span) digits, and a single header must have the shape above.
//!
//! # A decision without ids
//! `b3: 0` (or `x-b3-sampled: 0` without ids) says "do not record this request" but names no
//! trace. Extraction returns an **unsampled** context with fresh random ids, so the decision
//! is kept: spans started as its children record nothing, and calls made from them pass
//! `sampled = 0` on. `b3: 1` and `b3: d` without ids yield `None`: a new trace, which is
//! recorded, as they ask.

use super::{parse_hex, trace_id_hex, Extractor, Injector};
use crate::context::id::{SpanId, TraceId};
use crate::context::SpanContext;

/// The multi-header trace id header.
pub const TRACE_ID: &str = "x-b3-traceid";
/// The multi-header span id header.
pub const SPAN_ID: &str = "x-b3-spanid";
/// The multi-header parent span id header (not used by lstrace).
pub const PARENT_SPAN_ID: &str = "x-b3-parentspanid";
/// The multi-header sampled header.
pub const SAMPLED: &str = "x-b3-sampled";
/// The multi-header flags header (`1` = debug).
pub const FLAGS: &str = "x-b3-flags";
/// The single header.
pub const SINGLE: &str = "b3";

fn sampled_digit(context: &SpanContext) -> &'static str {
    if context.is_debug() {
        "d"
    } else if context.is_sampled() {
        "1"
    } else {
        "0"
    }
}

pub(super) fn inject_multi(context: &SpanContext, carrier: &mut dyn Injector) {
    carrier.set(TRACE_ID, trace_id_hex(context.trace_id()));
    carrier.set(SPAN_ID, format!("{:016x}", context.span_id().get()));
    // Debug implies sampled: B3 asks that the sampled header then be left out.
    if context.is_debug() {
        carrier.set(FLAGS, "1".to_owned());
    } else {
        carrier.set(SAMPLED, sampled_digit(context).to_owned());
    }
}

pub(super) fn inject_single(context: &SpanContext, carrier: &mut dyn Injector) {
    carrier.set(
        SINGLE,
        format!(
            "{}-{:016x}-{}",
            trace_id_hex(context.trace_id()),
            context.span_id().get(),
            sampled_digit(context)
        ),
    );
}

fn parse_trace_id(text: &str) -> Option<TraceId> {
    parse_hex(text, 32).filter(|&id| id != 0).map(TraceId)
}

fn parse_span_id(text: &str) -> Option<SpanId> {
    SpanId::new(u64::try_from(parse_hex(text, 16)?).ok()?)
}

/// The context that carries "not sampled" when the carrier names no trace.
fn unsampled_without_ids() -> SpanContext {
    SpanContext::new(TraceId::random(), SpanId::random(), false)
}

pub(super) fn extract_multi(carrier: &dyn Extractor) -> Option<SpanContext> {
    let debug = carrier.get(FLAGS).is_some_and(|f| f.trim() == "1");
    let decision = if debug {
        Some(true)
    } else {
        carrier.get(SAMPLED).and_then(|s| match s.trim() {
            "1" => Some(true),
            "0" => Some(false),
            s if s.eq_ignore_ascii_case("true") => Some(true),
            s if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        })
    };
    match (carrier.get(TRACE_ID), carrier.get(SPAN_ID)) {
        (None, None) if decision == Some(false) => Some(unsampled_without_ids()),
        (Some(trace_id), Some(span_id)) => Some(
            SpanContext::new(
                parse_trace_id(trace_id.trim())?,
                parse_span_id(span_id.trim())?,
                decision.unwrap_or(true),
            )
            .with_debug(debug),
        ),
        _ => None,
    }
}

pub(super) fn extract_single(carrier: &dyn Extractor) -> Option<SpanContext> {
    let value = carrier.get(SINGLE)?.trim();
    match value {
        "0" => return Some(unsampled_without_ids()),
        "1" | "d" => return None,
        _ => {}
    }
    let mut fields = value.split('-');
    let trace_id = parse_trace_id(fields.next()?)?;
    let span_id = parse_span_id(fields.next()?)?;
    let (sampled, debug) = match fields.next() {
        None | Some("1") => (true, false),
        Some("d") => (true, true),
        Some("0") => (false, false),
        Some(_) => return None,
    };
    if let Some(parent) = fields.next() {
        parse_span_id(parent)?;
    }
    if fields.next().is_some() {
        return None;
    }
    Some(SpanContext::new(trace_id, span_id, sampled).with_debug(debug))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::propagation::tests::map;
    use std::collections::HashMap;

    const TRACE: u128 = 0x80f1_98ee_5634_3ba8_64fe_8b2a_57d3_eff7;
    const SPAN: u64 = 0xe457_b5a2_e4d8_6bd1;

    #[test]
    fn multi_header_readme_example() {
        let ctx = extract_multi(&map(&[
            ("X-B3-TraceId", "80f198ee56343ba864fe8b2a57d3eff7"),
            ("X-B3-ParentSpanId", "05e3ac9a4f6e3b90"),
            ("X-B3-SpanId", "e457b5a2e4d86bd1"),
            ("X-B3-Sampled", "1"),
        ]))
        .unwrap();
        assert_eq!(ctx.trace_id(), TraceId(TRACE));
        assert_eq!(ctx.span_id().get(), SPAN);
        assert!(ctx.is_sampled());

        let mut out = HashMap::new();
        inject_multi(&ctx, &mut out);
        assert_eq!(
            out,
            map(&[
                ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
                ("x-b3-spanid", "e457b5a2e4d86bd1"),
                ("x-b3-sampled", "1"),
            ])
        );
    }

    #[test]
    fn sixty_four_bit_trace_ids_stay_sixteen_digits() {
        let ctx = SpanContext::new(
            TraceId(0x64fe_8b2a_57d3_eff7),
            SpanId::new(1).unwrap(),
            false,
        );
        let mut out = HashMap::new();
        inject_multi(&ctx, &mut out);
        inject_single(&ctx, &mut out);
        assert_eq!(out["x-b3-traceid"], "64fe8b2a57d3eff7");
        assert_eq!(out["x-b3-sampled"], "0");
        assert_eq!(out["b3"], "64fe8b2a57d3eff7-0000000000000001-0");
        assert_eq!(extract_single(&out), Some(ctx));
    }

    #[test]
    fn multi_header_sampling_states() {
        let ids = [
            ("x-b3-traceid", "64fe8b2a57d3eff7"),
            ("x-b3-spanid", "e457b5a2e4d86bd1"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut m = map(&ids);
            m.extend(map(extra));
            extract_multi(&m).map(|c| c.is_sampled())
        };
        assert_eq!(with(&[]), Some(true), "deferred: recorded");
        assert_eq!(with(&[("x-b3-sampled", "0")]), Some(false));
        assert_eq!(with(&[("x-b3-sampled", "false")]), Some(false));
        assert_eq!(with(&[("x-b3-sampled", "true")]), Some(true));
        assert_eq!(
            with(&[("x-b3-sampled", "0"), ("x-b3-flags", "1")]),
            Some(true)
        );
    }

    #[test]
    fn multi_header_needs_both_ids() {
        assert_eq!(extract_multi(&map(&[("x-b3-traceid", "1")])), None);
        assert_eq!(extract_multi(&map(&[("x-b3-spanid", "1")])), None);
        assert_eq!(extract_multi(&map(&[("x-b3-sampled", "1")])), None);
        let denied = extract_multi(&map(&[("x-b3-sampled", "0")])).unwrap();
        assert!(!denied.is_sampled());
        for (trace, span) in [("0", "1"), ("1", "0"), ("g", "1"), (&*"1".repeat(33), "1")] {
            let m = map(&[("x-b3-traceid", trace), ("x-b3-spanid", span)]);
            assert_eq!(extract_multi(&m), None, "{trace} {span}");
        }
    }

    #[test]
    fn single_header_readme_examples() {
        let ctx = extract_single(&map(&[(
            "b3",
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
        )]))
        .unwrap();
        assert_eq!(ctx.trace_id(), TraceId(TRACE));
        assert_eq!(ctx.span_id().get(), SPAN);
        assert!(ctx.is_sampled());

        let ctx = extract_single(&map(&[(
            "b3",
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1",
        )]))
        .unwrap();
        assert!(ctx.is_sampled(), "deferred: recorded");
        let debug = extract_single(&map(&[("b3", "a3ce929d0e0e4736-00f067aa0ba902b7-d")])).unwrap();
        assert!(debug.is_sampled());
        let denied =
            extract_single(&map(&[("b3", "a3ce929d0e0e4736-00f067aa0ba902b7-0")])).unwrap();
        assert!(!denied.is_sampled());

        let mut out = HashMap::new();
        inject_single(&ctx, &mut out);
        assert_eq!(
            out["b3"],
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"
        );
    }

    #[test]
    fn single_header_bare_decisions() {
        let denied = extract_single(&map(&[("b3", "0")])).unwrap();
        assert!(!denied.is_sampled());
        assert_eq!(extract_single(&map(&[("b3", "1")])), None);
        assert_eq!(extract_single(&map(&[("b3", "d")])), None);
    }

    #[test]
    fn single_header_rejects_malformed_values() {
        for value in [
            "",
            "-",
            "a3ce929d0e0e4736",
            "a3ce929d0e0e4736-",
            "a3ce929d0e0e4736-00f067aa0ba902b7-2",
            "a3ce929d0e0e4736-00f067aa0ba902b7-true",
            "a3ce929d0e0e4736-00f067aa0ba902b7-1-",
            "a3ce929d0e0e4736-00f067aa0ba902b7-1-zz",
            "a3ce929d0e0e4736-00f067aa0ba902b7-1-05e3ac9a4f6e3b90-x",
            "0000000000000000-00f067aa0ba902b7-1",
            "a3ce929d0e0e4736-0000000000000000-1",
        ] {
            assert_eq!(extract_single(&map(&[("b3", value)])), None, "{value}");
        }
    }
}
