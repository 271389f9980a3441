//! The core of lstrace: span model, task-local context, recorder, reporter, propagation and
//! protocol. Users depend on the `lstrace` crate, which re-exports all of this together with
//! the `#[traced]` macro.
#![deny(missing_docs)]
// docs.rs builds with `--cfg docsrs` on nightly: items say which feature they need.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "tracing", feature = "log"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "tracing", feature = "log"))))]
pub mod bridge;
mod clock;
mod context;
#[cfg(any(feature = "reqwest", feature = "tower"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "reqwest", feature = "tower"))))]
pub mod http;
mod in_place;
pub mod propagation;
#[cfg(feature = "reporter")]
#[cfg_attr(docsrs, doc(cfg(feature = "reporter")))]
pub mod protocol;
mod record;
pub mod recorder;
#[cfg(feature = "reporter")]
#[cfg_attr(docsrs, doc(cfg(feature = "reporter")))]
pub mod reporter;
pub mod sampling;
#[cfg(feature = "satellite")]
#[cfg_attr(docsrs, doc(cfg(feature = "satellite")))]
pub mod satellite;
mod span;
mod tag;
mod task;
pub mod testing;

pub use context::id::{SpanId, TraceId};
pub use context::SpanContext;
pub use record::{LogRecord, Relationship, SpanRecord};
pub use recorder::Recorder;
#[cfg(feature = "reporter")]
#[cfg_attr(docsrs, doc(cfg(feature = "reporter")))]
pub use reporter::{
    close, flush, init, set_event_handler, tracer, Event, FlushReport, InitError, Options,
    ShutdownGuard, Stats, Tracer,
};
pub use span::{
    baggage_item, current, log, record_error, set_baggage_item, set_tag, span, EnteredSpan, Span,
    SpanBuilder, SpanKind,
};
pub use tag::{SpanStr, Tag, TagList, TagValue, ToTagValue};
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use task::future::{spawn, spawn_blocking};
pub use task::future::{FutureExt, InCurrentContext, Instrumented};

/// What lstrace's own tests, benchmarks and macros need that is not part of the API. Not a
/// public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    #[cfg(feature = "reporter")]
    pub use crate::reporter::uninstalled::UninstalledTracer;

    /// Spans waiting in the per-thread rings.
    #[must_use]
    pub fn pending_spans() -> usize {
        crate::recorder::pending()
    }

    /// Sets the most logs a span keeps (the tracer sets it from its options).
    pub fn set_max_logs_per_span(max: usize) {
        crate::recorder::set_max_logs_per_span(max);
    }

    /// Sets the most tags a span keeps (the tracer sets it from its options).
    pub fn set_max_tags_per_span(max: usize) {
        crate::recorder::set_max_tags_per_span(max);
    }

    /// Sets the most baggage items a context carries (the tracer sets it from its options).
    pub fn set_max_baggage_items(max: usize) {
        crate::recorder::set_max_baggage_items(max);
    }
}
