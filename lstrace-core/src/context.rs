//! The span context: what identifies a span across threads, tasks and processes.

use crate::id::{SpanId, TraceId};
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
    extras: Option<Arc<Extras>>,
}

#[derive(Clone, Default, PartialEq, Eq)]
struct Extras {
    baggage: Vec<(String, String)>,
    trace_state: Option<String>,
}

impl SpanContext {
    /// A context with the given ids, no baggage and no trace state.
    #[must_use]
    pub fn new(trace_id: TraceId, span_id: SpanId, sampled: bool) -> Self {
        SpanContext {
            trace_id,
            span_id,
            sampled,
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

    /// The value of a baggage item.
    #[must_use]
    pub fn baggage_item(&self, key: &str) -> Option<&str> {
        self.baggage().find(|(k, _)| *k == key).map(|(_, v)| v)
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

    /// Sets a baggage item (replacing an earlier value of the same key).
    pub fn set_baggage_item(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let value = value.into();
        let baggage = &mut Arc::make_mut(self.extras.get_or_insert_with(Arc::default)).baggage;
        match baggage.iter_mut().find(|(k, _)| *k == key) {
            Some(item) => item.1 = value,
            None => baggage.push((key, value)),
        }
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

    /// This context with another sampled flag.
    #[must_use]
    pub fn with_sampled(mut self, sampled: bool) -> Self {
        self.sampled = sampled;
        self
    }

    /// The context of a child: same trace, inherited flag, baggage and trace state, a new id.
    pub(crate) fn child(&self, span_id: SpanId) -> Self {
        SpanContext {
            trace_id: self.trace_id,
            span_id,
            sampled: self.sampled,
            extras: self.extras.clone(),
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
