//! The span context: what identifies a span across threads, tasks and processes.

pub(crate) mod id;

use crate::context::id::{SpanId, TraceId};
use crate::recorder;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Identifies a span and carries what its children inherit: the trace id, the sampled flag,
/// baggage, and the W3C `tracestate` received from upstream (passed through unchanged).
///
/// Cheap to clone: baggage and trace state sit behind one shared pointer that is only present
/// when either is set.
#[derive(Clone, PartialEq, Eq)]
pub struct SpanContext {
    trace_id: TraceId,
    span_id: SpanId,
    sampled: bool,
    /// B3's debug flag: record this trace whatever the samplers say, and tell downstream.
    debug: bool,
    extras: Option<Arc<Extras>>,
}

#[derive(Clone, Default)]
struct Extras {
    baggage: Vec<(String, String)>,
    /// Where each baggage key is in `baggage`: empty until there are [`INDEX_FROM`] items,
    /// below which a scan costs less than hashing a key.
    index: HashMap<String, usize>,
    /// Items with new keys refused because the baggage was at its cap.
    dropped: u32,
    trace_state: Option<String>,
}

/// From this many baggage items on, their keys are indexed.
const INDEX_FROM: usize = 16;

impl PartialEq for Extras {
    /// The index follows from the baggage.
    fn eq(&self, other: &Self) -> bool {
        self.baggage == other.baggage
            && self.dropped == other.dropped
            && self.trace_state == other.trace_state
    }
}

impl Eq for Extras {}

impl Extras {
    fn position(&self, key: &str) -> Option<usize> {
        if self.index.is_empty() {
            count_key_comparisons(self.baggage.len());
            self.baggage.iter().position(|(k, _)| k == key)
        } else {
            count_key_comparisons(1);
            self.index.get(key).copied()
        }
    }

    /// Sets an item: O(1) amortised; a new key past `max` items is dropped and counted.
    fn set(&mut self, key: String, value: String, max: usize) {
        if let Some(i) = self.position(&key) {
            self.baggage[i].1 = value;
            return;
        }
        if self.baggage.len() >= max {
            self.dropped = self.dropped.saturating_add(1);
            recorder::count_baggage_item_dropped();
            return;
        }
        if !self.index.is_empty() {
            self.index.insert(key.clone(), self.baggage.len());
        } else if self.baggage.len() + 1 >= INDEX_FROM {
            self.index = self
                .baggage
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect();
            self.index.insert(key.clone(), self.baggage.len());
        }
        self.baggage.push((key, value));
    }
}

#[cfg(test)]
thread_local! {
    /// Keys compared (or hashed) by baggage lookups on this thread: how the tests see that
    /// setting an item costs O(1) without timing it.
    static KEY_COMPARISONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[inline(always)]
fn count_key_comparisons(_n: usize) {
    #[cfg(test)]
    KEY_COMPARISONS.with(|c| c.set(c.get() + _n as u64));
}

impl SpanContext {
    /// A context with the given ids, no baggage and no trace state.
    #[must_use]
    pub fn new(trace_id: TraceId, span_id: SpanId, sampled: bool) -> Self {
        SpanContext {
            trace_id,
            span_id,
            sampled,
            debug: false,
            extras: None,
        }
    }

    /// The trace id (128 bits).
    #[must_use]
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The span id.
    #[must_use]
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// Whether the trace is recorded. Children of an unsampled span are not recorded either.
    #[must_use]
    pub fn is_sampled(&self) -> bool {
        self.sampled
    }

    /// True when upstream asked (with B3's debug flag) that this trace be recorded whatever
    /// the samplers say. A debug context is sampled. Only the B3 formats carry the flag
    /// downstream; the others send it as sampled (see
    /// [propagation](crate::propagation#sampling-decisions-baggage-and-the-debug-flag)).
    #[must_use]
    pub fn is_debug(&self) -> bool {
        self.debug
    }

    /// The value of a baggage item.
    #[must_use]
    pub fn baggage_item(&self, key: &str) -> Option<&str> {
        let extras = self.extras.as_deref()?;
        extras.position(key).map(|i| extras.baggage[i].1.as_str())
    }

    /// How many baggage items with new keys this context (or the context it inherited its
    /// baggage from) refused because it carried the most items allowed
    /// ([`Options::max_baggage_items`](crate::Options::max_baggage_items)).
    #[must_use]
    pub fn dropped_baggage_items(&self) -> u32 {
        self.extras.as_deref().map_or(0, |e| e.dropped)
    }

    /// All baggage items, in the order they were first set.
    pub fn baggage(&self) -> impl Iterator<Item = (&str, &str)> {
        self.extras
            .iter()
            .flat_map(|e| e.baggage.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// The W3C `tracestate` received from upstream, if any.
    #[must_use]
    pub fn trace_state(&self) -> Option<&str> {
        self.extras
            .as_deref()
            .and_then(|e| e.trace_state.as_deref())
    }

    /// Sets a baggage item (replacing an earlier value of the same key). A context carries
    /// at most [`Options::max_baggage_items`](crate::Options::max_baggage_items) items: an
    /// item with a new key past that is dropped and counted
    /// ([`SpanContext::dropped_baggage_items`]).
    pub fn set_baggage_item(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let max = recorder::max_baggage_items();
        Arc::make_mut(self.extras.get_or_insert_with(Arc::default)).set(
            key.into(),
            value.into(),
            max,
        );
    }

    /// This context with a baggage item set.
    #[must_use]
    pub fn with_baggage_item(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set_baggage_item(key, value);
        self
    }

    /// This context with the W3C trace state that children carry on unchanged.
    #[must_use]
    pub fn with_trace_state(mut self, trace_state: Option<String>) -> Self {
        if trace_state.is_some() || self.extras.is_some() {
            Arc::make_mut(self.extras.get_or_insert_with(Arc::default)).trace_state = trace_state;
        }
        self
    }

    /// This context with another sampled flag (an unsampled context is not a debug one).
    #[must_use]
    pub fn with_sampled(mut self, sampled: bool) -> Self {
        self.sampled = sampled;
        self.debug &= sampled;
        self
    }

    /// This context with the debug flag set or cleared (a debug context is sampled).
    #[must_use]
    pub fn with_debug(mut self, debug: bool) -> Self {
        self.debug = debug;
        self.sampled |= debug;
        self
    }

    /// The context of a child: same trace, inherited flags, baggage and trace state, a new id.
    pub(crate) fn child(&self, span_id: SpanId) -> Self {
        SpanContext {
            trace_id: self.trace_id,
            span_id,
            sampled: self.sampled,
            debug: self.debug,
            extras: self.extras.clone(),
        }
    }

    /// True when the context carries baggage or a trace state (held apart, shared by its
    /// copies).
    #[cfg(feature = "tracing")]
    pub(crate) fn has_extras(&self) -> bool {
        self.extras.is_some()
    }

    /// True when both contexts share their baggage and trace state (or both have none).
    #[cfg(feature = "tracing")]
    pub(crate) fn shares_extras_with(&self, other: &SpanContext) -> bool {
        match (&self.extras, &other.extras) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The shared baggage pointer: finished spans keep it without copying.
    pub(crate) fn has_baggage(&self) -> bool {
        self.extras.as_ref().is_some_and(|e| !e.baggage.is_empty())
    }
}

impl fmt::Debug for SpanContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SpanContext");
        d.field("trace_id", &self.trace_id)
            .field("span_id", &self.span_id)
            .field("sampled", &self.sampled);
        if self.debug {
            d.field("debug", &true);
        }
        if self.has_baggage() {
            d.field("baggage", &self.baggage().collect::<Vec<_>>());
        }
        if let Some(state) = self.trace_state() {
            d.field("trace_state", &state);
        }
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> SpanContext {
        SpanContext::new(TraceId(7), SpanId::new(9).unwrap(), true)
    }

    #[test]
    fn baggage_is_copy_on_write() {
        let parent = ctx().with_baggage_item("user", "ann");
        let mut child = parent.child(SpanId::new(10).unwrap());
        child.set_baggage_item("user", "bob");
        child.set_baggage_item("tier", "gold");
        assert_eq!(parent.baggage_item("user"), Some("ann"));
        assert_eq!(parent.baggage_item("tier"), None);
        assert_eq!(
            child.baggage().collect::<Vec<_>>(),
            [("user", "bob"), ("tier", "gold")]
        );
    }

    #[test]
    fn setting_many_baggage_items_compares_a_bounded_number_of_keys_per_item() {
        // The issue measured 33 k baggage items on one span taking 2.4-2.8 s: each set
        // scanned every key. (Set far below the global cap, which tests leave at its default,
        // through the item type itself.)
        const ITEMS: usize = 40_000;
        let mut extras = Extras::default();
        let before = KEY_COMPARISONS.with(std::cell::Cell::get);
        for i in 0..ITEMS {
            extras.set(format!("key{i}"), "v".into(), usize::MAX);
        }
        for i in (0..ITEMS).step_by(5) {
            extras.set(format!("key{i}"), "w".into(), usize::MAX);
            assert_eq!(extras.position(&format!("key{i}")), Some(i));
        }
        let compared = KEY_COMPARISONS.with(std::cell::Cell::get) - before;
        let sets = (ITEMS + ITEMS.div_ceil(5) * 2) as u64;
        assert!(
            compared <= sets * INDEX_FROM as u64,
            "{compared} key comparisons for {sets} sets and gets"
        );
        assert_eq!(extras.baggage.len(), ITEMS);
        assert_eq!(extras.baggage[5], ("key5".to_owned(), "w".to_owned()));
    }

    #[test]
    fn baggage_past_the_cap_is_dropped_and_counted_and_children_inherit_the_count() {
        let mut context = ctx();
        for i in 0..super::recorder::DEFAULT_MAX_BAGGAGE_ITEMS + 20 {
            context.set_baggage_item(format!("k{i}"), "v");
        }
        assert_eq!(
            context.baggage().count(),
            super::recorder::DEFAULT_MAX_BAGGAGE_ITEMS
        );
        assert_eq!(context.dropped_baggage_items(), 20);
        // A key it has is replaced, not dropped.
        context.set_baggage_item("k0", "w");
        assert_eq!(context.baggage_item("k0"), Some("w"));
        assert_eq!(context.dropped_baggage_items(), 20);
        let child = context.child(SpanId::new(12).unwrap());
        assert_eq!(child.dropped_baggage_items(), 20);
        assert_eq!(child.baggage_item("k100"), Some("v"));
    }

    #[test]
    fn children_inherit_trace_state_and_flag() {
        let parent = ctx()
            .with_trace_state(Some("vendor=1".into()))
            .with_sampled(false);
        let child = parent.child(SpanId::new(11).unwrap());
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_eq!(child.trace_state(), Some("vendor=1"));
        assert!(!child.is_sampled());
        assert!(!child.has_baggage());
    }
}
