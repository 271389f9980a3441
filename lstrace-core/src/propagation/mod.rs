//! Cross-process propagation: writing a span context into outgoing request headers (inject)
//! and reading it back on the other side (extract), in the formats other tracers speak.
//!
//! | format | headers |
//! |---|---|
//! | [`Format::LightStep`] | `ot-tracer-traceid`, `ot-tracer-spanid`, `ot-tracer-sampled`, `ot-baggage-<key>` |
//! | [`Format::B3Multi`] | `x-b3-traceid`, `x-b3-spanid`, `x-b3-sampled`, `x-b3-flags` |
//! | [`Format::B3Single`] | `b3: {traceid}-{spanid}[-{sampled}[-{parentspanid}]]` |
//! | [`Format::TraceContext`] | W3C `traceparent`, `tracestate` (passed through) and `baggage` |
//! | [`Format::Envoy`] | `x-ot-span-context`: the base64 [`binary`] carrier |
//!
//! A [`PropagatorStack`] injects with every format it holds and extracts with the first one
//! that finds a valid context. The process-wide stack ([`global_stack`], set with
//! [`set_global_stack`]) is used by [`inject`], [`extract`] and the HTTP integrations; by
//! default it holds LightStep, W3C trace context and B3 (multi-header).
//!
//! ```
//! use lstrace_core::propagation;
//! use std::collections::HashMap;
//!
//! let mut headers = HashMap::new();
//! headers.insert("traceparent".to_owned(),
//!     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned());
//! let parent = propagation::extract(&headers).expect("a valid traceparent");
//! assert_eq!(parent.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
//!
//! let mut outgoing = http::HeaderMap::new();
//! propagation::inject(&parent, &mut outgoing);
//! assert_eq!(outgoing["ot-tracer-spanid"], "00f067aa0ba902b7");
//! ```
//!
//! # Invalid and hostile carriers
//! Extraction never panics: a carrier that holds no valid context in a format yields `None`
//! for that format (all-zero ids, wrong lengths, non-hex digits, W3C version `ff`, ...). What
//! a carrier can make the process store is bounded: see [`MAX_BAGGAGE_ITEMS`],
//! [`MAX_BAGGAGE_KEY_BYTES`], [`MAX_BAGGAGE_VALUE_BYTES`], [`MAX_BAGGAGE_BYTES`],
//! [`MAX_TRACE_STATE_BYTES`] and [`binary::MAX_ENCODED_BYTES`]. Baggage items beyond the
//! bounds are left out (whole items, never truncated); an oversized `tracestate` is left out.
//!
//! # What inject writes, extract reads back
//! Injection applies the same bounds: each format writes the baggage items it can carry, in the
//! context's order, as long as they fit the bounds above, and leaves out the others (whole
//! items), so that extraction on the other side takes back every item that was written. A
//! `tracestate` that extraction would leave out is not written. Injection never panics: a
//! carrier that cannot hold a field (an HTTP header map that is full, or a value that is not
//! visible ASCII) skips it. Whatever is left out is counted in [`fields_left_out`].
//!
//! # Sampling decisions, baggage and the debug flag
//! Every format carries the sampling decision, "not sampled" included, so that a service in
//! the middle of a chain passes its caller's decision on. What else each one carries:
//!
//! | format | baggage | B3's debug flag |
//! |---|---|---|
//! | [`Format::LightStep`] | `ot-baggage-<key>` | no |
//! | [`Format::TraceContext`] | W3C `baggage` | no |
//! | [`Format::Envoy`] | the binary carrier's baggage | no |
//! | [`Format::B3Multi`] | no | `x-b3-flags: 1` (read and written) |
//! | [`Format::B3Single`] | no | `d` as the sampling field (read and written) |
//!
//! B3 has no baggage: put it in a stack with W3C trace context (or LightStep) and the items
//! go along in that format's headers. LightStep, W3C trace context and envoy have no debug
//! flag: a debug context goes out in them as plainly sampled, so a next service that reads
//! only those formats follows it as sampled (a parent-based policy records it) but does not
//! know it was forced; in a stack with B3, the flag travels in B3's headers.

pub mod b3;
pub mod binary;
mod carriers;
pub mod lightstep;
pub mod trace_context;

pub use carriers::{Extractor, Injector};

use crate::context::id::TraceId;
use crate::context::SpanContext;
use once_cell::sync::Lazy;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// At most this many baggage items are taken from one carrier (the W3C baggage
/// specification's minimum that every implementation must carry).
pub const MAX_BAGGAGE_ITEMS: usize = 64;
/// Baggage items whose key is longer than this (in bytes) are left out.
pub const MAX_BAGGAGE_KEY_BYTES: usize = 256;
/// Baggage items whose value is longer than this (in bytes) are left out.
pub const MAX_BAGGAGE_VALUE_BYTES: usize = 4096;
/// The keys and values of all baggage items taken from one carrier add up to at most this
/// many bytes (the W3C baggage specification's 8192).
pub const MAX_BAGGAGE_BYTES: usize = 8192;
/// A W3C `tracestate` longer than this (in bytes, all `tracestate` headers joined) is left
/// out: 32 list members of the W3C's usual sizes fit.
pub const MAX_TRACE_STATE_BYTES: usize = 4096;

/// A propagation format: writes a span context into a carrier and reads one back.
///
/// The formats lstrace speaks are the variants of [`Format`]; implement this trait to add
/// another one to a [`PropagatorStack`].
pub trait Propagator: fmt::Debug + Send + Sync {
    /// Writes `context` (ids, sampled flag, and baggage or trace state where the format
    /// carries them) into `carrier`.
    fn inject(&self, context: &SpanContext, carrier: &mut dyn Injector);

    /// Reads a context from `carrier`: `None` when the carrier holds no valid context in
    /// this format. Must not panic, whatever the carrier holds.
    fn extract(&self, carrier: &dyn Extractor) -> Option<SpanContext>;
}

/// The propagation formats lstrace implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// LightStep's (and the OpenTracing basic tracers') `ot-tracer-*` headers with
    /// `ot-baggage-*` items. Carries the low 64 bits of the trace id. See [`lightstep`].
    LightStep,
    /// Zipkin B3, one header per field. See [`b3`].
    B3Multi,
    /// Zipkin B3, the single `b3` header. See [`b3`].
    B3Single,
    /// W3C trace context (`traceparent`, `tracestate`) and W3C `baggage`. See
    /// [`trace_context`].
    TraceContext,
    /// Envoy's `x-ot-span-context` header: the base64 LightStep binary carrier. Carries the
    /// low 64 bits of the trace id. See [`binary`].
    Envoy,
}

impl Propagator for Format {
    fn inject(&self, context: &SpanContext, carrier: &mut dyn Injector) {
        match self {
            Format::LightStep => lightstep::inject(context, carrier),
            Format::B3Multi => b3::inject_multi(context, carrier),
            Format::B3Single => b3::inject_single(context, carrier),
            Format::TraceContext => trace_context::inject(context, carrier),
            Format::Envoy => binary::inject_envoy(context, carrier),
        }
    }

    fn extract(&self, carrier: &dyn Extractor) -> Option<SpanContext> {
        match self {
            Format::LightStep => lightstep::extract(carrier),
            Format::B3Multi => b3::extract_multi(carrier),
            Format::B3Single => b3::extract_single(carrier),
            Format::TraceContext => trace_context::extract(carrier),
            Format::Envoy => binary::extract_envoy(carrier),
        }
    }
}

/// An ordered list of formats: inject writes every one of them, extract uses the first that
/// finds a valid context.
///
/// The same request often carries one context in several formats (this stack injects all of
/// them). Some formats carry less than others, so once the first format has found a context,
/// the later ones may complete it, but only when they carry the same context (same span id,
/// same low 64 bits of trace id): the high 64 bits of a trace id that the first format could
/// not carry, the W3C `tracestate`, and baggage items under keys the context does not hold
/// yet (compared without case), and B3's debug flag. Ids and the sampled flag otherwise
/// come from the first.
///
/// ```
/// use lstrace_core::propagation::{Format, PropagatorStack};
///
/// let b3_only: PropagatorStack = [Format::B3Single, Format::B3Multi].into_iter().collect();
/// assert_eq!(b3_only.len(), 2);
/// ```
#[derive(Clone)]
pub struct PropagatorStack {
    propagators: Vec<Arc<dyn Propagator>>,
}

impl PropagatorStack {
    /// A stack without any format: it injects nothing and extracts nothing.
    #[must_use]
    pub fn empty() -> Self {
        PropagatorStack {
            propagators: Vec::new(),
        }
    }

    /// This stack with `propagator` added after the formats it holds.
    #[must_use]
    pub fn with(mut self, propagator: impl Propagator + 'static) -> Self {
        self.propagators.push(Arc::new(propagator));
        self
    }

    /// How many formats the stack holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.propagators.len()
    }

    /// True when the stack holds no format.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.propagators.is_empty()
    }

    /// Writes `context` into `carrier` in every format of the stack.
    pub fn inject<I: Injector + ?Sized>(&self, context: &SpanContext, carrier: &mut I) {
        let mut carrier = carrier;
        for propagator in &self.propagators {
            propagator.inject(context, &mut carrier);
        }
    }

    /// Reads a context from `carrier` with the first format that finds a valid one,
    /// completed by the later formats (see the type's documentation).
    pub fn extract<E: Extractor + ?Sized>(&self, carrier: &E) -> Option<SpanContext> {
        let carrier = &carrier;
        let mut rest = self.propagators.iter();
        let mut context = rest.find_map(|p| p.extract(carrier))?;
        for propagator in rest {
            if let Some(other) = propagator.extract(carrier) {
                context = complete(context, &other);
            }
        }
        Some(context)
    }
}

/// Fills in what `context` lacks from `other`, when both are the same span's context.
fn complete(mut context: SpanContext, other: &SpanContext) -> SpanContext {
    if other.span_id() != context.span_id() || other.trace_id().low() != context.trace_id().low() {
        return context;
    }
    if context.trace_id().high() == 0 && other.trace_id().high() != 0 {
        context = with_trace_id(&context, other.trace_id());
    }
    // B3's debug flag is a stronger "sampled" that the other formats cannot carry.
    if other.is_debug() && !context.is_debug() {
        context = context.with_debug(true);
    }
    if context.trace_state().is_none() && other.trace_state().is_some() {
        context = context.with_trace_state(other.trace_state().map(str::to_owned));
    }
    let mut budget = BaggageBudget::of(&context);
    let missing: Vec<(String, String)> = other
        .baggage()
        .filter(|(key, _)| {
            !context
                .baggage()
                .any(|(have, _)| have.eq_ignore_ascii_case(key))
        })
        .filter(|(key, value)| budget.admit_extracted(key, value))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    for (key, value) in missing {
        context.set_baggage_item(key, value);
    }
    context
}

/// `context` with another trace id (a wider one that carries the same low 64 bits).
fn with_trace_id(context: &SpanContext, trace_id: TraceId) -> SpanContext {
    context.baggage().fold(
        SpanContext::new(trace_id, context.span_id(), context.is_sampled())
            .with_debug(context.is_debug())
            .with_trace_state(context.trace_state().map(str::to_owned)),
        |ctx, (key, value)| ctx.with_baggage_item(key, value),
    )
}

impl Default for PropagatorStack {
    /// LightStep, W3C trace context, B3 multi-header.
    fn default() -> Self {
        [Format::LightStep, Format::TraceContext, Format::B3Multi]
            .into_iter()
            .collect()
    }
}

impl FromIterator<Format> for PropagatorStack {
    fn from_iter<T: IntoIterator<Item = Format>>(formats: T) -> Self {
        formats
            .into_iter()
            .fold(PropagatorStack::empty(), PropagatorStack::with)
    }
}

impl Propagator for PropagatorStack {
    fn inject(&self, context: &SpanContext, carrier: &mut dyn Injector) {
        PropagatorStack::inject(self, context, carrier);
    }

    fn extract(&self, carrier: &dyn Extractor) -> Option<SpanContext> {
        PropagatorStack::extract(self, carrier)
    }
}

impl fmt::Debug for PropagatorStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.propagators).finish()
    }
}

static GLOBAL_STACK: Lazy<RwLock<Arc<PropagatorStack>>> =
    Lazy::new(|| RwLock::new(Arc::new(PropagatorStack::default())));

/// Sets the process-wide stack that [`inject`], [`extract`] and the HTTP integrations use.
/// `lstrace::init` sets it from its options; call it yourself only without `init`.
pub fn set_global_stack(stack: PropagatorStack) {
    let stack = Arc::new(stack);
    *GLOBAL_STACK.write().unwrap_or_else(PoisonError::into_inner) = stack;
}

/// The process-wide stack: the one last set with [`set_global_stack`], else the default
/// (LightStep, W3C trace context, B3 multi-header).
#[must_use]
pub fn global_stack() -> Arc<PropagatorStack> {
    GLOBAL_STACK
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Writes `context` into `carrier` in every format of the [`global_stack`].
pub fn inject<I: Injector + ?Sized>(context: &SpanContext, carrier: &mut I) {
    global_stack().inject(context, carrier);
}

/// Reads a context from `carrier` with the [`global_stack`]. Start the span that handles
/// the request as its child: `lstrace::span("handle").child_of(&context)`.
pub fn extract<E: Extractor + ?Sized>(carrier: &E) -> Option<SpanContext> {
    global_stack().extract(carrier)
}

static FIELDS_LEFT_OUT: AtomicU64 = AtomicU64::new(0);

/// How many fields propagation has left out since the process started, counted once per
/// format and carrier. Injecting: baggage items beyond the bounds (see the module's
/// documentation) or that a format cannot write, a `tracestate` that extraction would refuse,
/// and fields that a carrier could not hold. Extracting: baggage items of a carrier beyond
/// the bounds, which the extracted context does not get.
#[must_use]
pub fn fields_left_out() -> u64 {
    FIELDS_LEFT_OUT.load(Ordering::Relaxed)
}

/// Counts fields that injection or extraction left out.
pub(crate) fn leave_out(fields: usize) {
    if fields > 0 {
        FIELDS_LEFT_OUT.fetch_add(fields as u64, Ordering::Relaxed);
    }
}

/// The baggage items of `context` that a format writes: those it can carry (`writable`), in
/// the context's order, as long as they fit the bounds that extraction applies. The others
/// are counted as left out.
pub(crate) fn baggage_to_inject(
    context: &SpanContext,
    writable: impl Fn(&str, &str) -> bool,
) -> Vec<(&str, &str)> {
    let mut budget = BaggageBudget::new();
    let mut left_out = 0;
    let items = context
        .baggage()
        .filter(|(key, value)| {
            let written = writable(key, value) && budget.admit(key, value);
            left_out += usize::from(!written);
            written
        })
        .collect();
    leave_out(left_out);
    items
}

/// Counts what one carrier adds to a context's baggage, against the bounds above.
pub(crate) struct BaggageBudget {
    items: usize,
    bytes: usize,
}

impl BaggageBudget {
    pub(crate) fn new() -> Self {
        BaggageBudget { items: 0, bytes: 0 }
    }

    /// A budget of which `context`'s baggage has already spent its share.
    fn of(context: &SpanContext) -> Self {
        let mut budget = BaggageBudget::new();
        for (key, value) in context.baggage() {
            budget.items += 1;
            budget.bytes += key.len() + value.len();
        }
        budget
    }

    /// Whether one more item read from a carrier fits; if not, it is counted as left out.
    pub(crate) fn admit_extracted(&mut self, key: &str, value: &str) -> bool {
        let fits = self.admit(key, value);
        if !fits {
            leave_out(1);
        }
        fits
    }

    /// Whether one more item fits; if so, it is counted.
    pub(crate) fn admit(&mut self, key: &str, value: &str) -> bool {
        let size = key.len() + value.len();
        let fits = !key.is_empty()
            && key.len() <= MAX_BAGGAGE_KEY_BYTES
            && value.len() <= MAX_BAGGAGE_VALUE_BYTES
            && self.items < MAX_BAGGAGE_ITEMS
            && self.bytes + size <= MAX_BAGGAGE_BYTES;
        if fits {
            self.items += 1;
            self.bytes += size;
        }
        fits
    }
}

/// Parses 1 to `max_digits` hex digits of either case (at most 32).
pub(crate) fn parse_hex(digits: &str, max_digits: usize) -> Option<u128> {
    if digits.is_empty() || digits.len() > max_digits.min(32) {
        return None;
    }
    digits.bytes().try_fold(0u128, |acc, b| {
        let digit = char::from(b).to_digit(16)?;
        Some((acc << 4) | u128::from(digit))
    })
}

/// Parses exactly `digits` lower-case hex digits (W3C's strict form).
pub(crate) fn parse_lower_hex(text: &str, digits: usize) -> Option<u128> {
    if text.len() != digits || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    parse_hex(text, digits)
}

/// The trace id as hex: 32 digits when its high half is set, else 16 (what 64-bit-only
/// implementations of B3 expect).
pub(crate) fn trace_id_hex(trace_id: TraceId) -> String {
    if trace_id.high() == 0 {
        format!("{:016x}", trace_id.low())
    } else {
        format!("{:032x}", trace_id.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::id::SpanId;
    use std::collections::HashMap;

    /// A string map carrier from literal pairs, for the format modules' tests.
    pub(crate) fn map(entries: &[(&str, &str)]) -> HashMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn hex_parsing_bounds() {
        assert_eq!(parse_hex("aBc", 16), Some(0xabc));
        assert_eq!(parse_hex("", 16), None);
        assert_eq!(parse_hex("12345678901234567", 16), None);
        assert_eq!(parse_hex("+1", 16), None);
        assert_eq!(parse_hex(&"f".repeat(32), 32), Some(u128::MAX));
        assert_eq!(parse_hex(&"f".repeat(33), 40), None);
        assert_eq!(parse_lower_hex("00ab", 4), Some(0xab));
        assert_eq!(parse_lower_hex("00AB", 4), None);
        assert_eq!(parse_lower_hex("0ab", 4), None);
    }

    #[test]
    fn the_first_format_that_finds_a_context_wins() {
        let carrier = map(&[
            ("ot-tracer-traceid", "1"),
            ("ot-tracer-spanid", "2"),
            ("x-b3-traceid", "0000000000000003"),
            ("x-b3-spanid", "0000000000000004"),
        ]);
        let ctx = PropagatorStack::default().extract(&carrier).unwrap();
        assert_eq!((ctx.trace_id().0, ctx.span_id().get()), (1, 2));
        let b3_first: PropagatorStack = [Format::B3Multi, Format::LightStep].into_iter().collect();
        let ctx = b3_first.extract(&carrier).unwrap();
        assert_eq!((ctx.trace_id().0, ctx.span_id().get()), (3, 4));
        assert_eq!(PropagatorStack::empty().extract(&carrier), None);
    }

    #[test]
    fn an_invalid_first_format_falls_through_to_the_next() {
        let carrier = map(&[
            ("ot-tracer-traceid", "0"),
            ("ot-tracer-spanid", "2"),
            ("x-b3-traceid", "0000000000000003"),
            ("x-b3-spanid", "0000000000000004"),
        ]);
        let ctx = PropagatorStack::default().extract(&carrier).unwrap();
        assert_eq!(ctx.span_id().get(), 4);
    }

    #[test]
    fn later_formats_complete_the_same_context_only() {
        let full = SpanContext::new(
            TraceId(0x0123_4567_89ab_cdef_0000_0000_0000_0007),
            SpanId::new(9).unwrap(),
            true,
        )
        .with_trace_state(Some("congo=t61rcWkgMzE".into()))
        .with_baggage_item("Tier", "gold")
        .with_baggage_item("city", "Zürich");
        let mut carrier = http::HeaderMap::new();
        PropagatorStack::default().inject(&full, &mut carrier);
        // `ot-baggage-city` cannot hold "Zürich": W3C `baggage` (percent-encoded) does.
        assert!(carrier.get("ot-baggage-city").is_none());
        let ctx = PropagatorStack::default().extract(&carrier).unwrap();
        assert_eq!(ctx.trace_id(), full.trace_id());
        assert_eq!(ctx.trace_state(), Some("congo=t61rcWkgMzE"));
        // LightStep lower-cases its keys; W3C's "Tier" is the same item.
        assert_eq!(
            ctx.baggage().collect::<Vec<_>>(),
            [("tier", "gold"), ("city", "Zürich")]
        );

        // Another span's context in a later format adds nothing.
        carrier.remove("x-b3-traceid");
        carrier.insert(
            "traceparent",
            http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        );
        let ctx = PropagatorStack::default().extract(&carrier).unwrap();
        assert_eq!(ctx.trace_id(), TraceId(7));
        assert_eq!(ctx.trace_state(), None);
    }

    #[test]
    fn stack_debug_lists_the_formats() {
        assert_eq!(
            format!("{:?}", PropagatorStack::default()),
            "[LightStep, TraceContext, B3Multi]"
        );
    }

    #[test]
    fn baggage_budget_bounds_items_and_bytes() {
        let mut budget = BaggageBudget::new();
        assert!(!budget.admit("", "v"));
        assert!(!budget.admit(&"k".repeat(MAX_BAGGAGE_KEY_BYTES + 1), "v"));
        assert!(!budget.admit("k", &"v".repeat(MAX_BAGGAGE_VALUE_BYTES + 1)));
        assert!(budget.admit("k", &"v".repeat(MAX_BAGGAGE_VALUE_BYTES)));
        assert!(budget.admit("k", &"v".repeat(MAX_BAGGAGE_VALUE_BYTES - 2)));
        assert!(!budget.admit("k", "v"));

        let mut budget = BaggageBudget::new();
        let admitted = (0..1000)
            .filter(|i| budget.admit(&format!("k{i}"), "v"))
            .count();
        assert_eq!(admitted, MAX_BAGGAGE_ITEMS);
    }
}
