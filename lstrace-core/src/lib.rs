//! The core of lstrace: span model, task-local context, recorder, reporter, propagation and
//! protocol. Users depend on the `lstrace` crate, which re-exports all of this together with
//! the `#[traced]` macro.
#![deny(missing_docs)]
// docs.rs builds with `--cfg docsrs` on nightly: items say which feature they need.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "tracing", feature = "log"))]
mod bridge;
mod clock;
pub mod collector;
mod context;
mod future;
#[cfg(any(feature = "reqwest", feature = "tower"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "reqwest", feature = "tower"))))]
pub mod http;
mod id;
mod local;
pub mod propagation;
pub mod protocol;
mod record;
pub mod reporter;
mod ring;
pub mod sampling;
#[cfg(feature = "satellite")]
#[cfg_attr(docsrs, doc(cfg(feature = "satellite")))]
pub mod satellite;
mod span;
mod tag;
pub mod testing;
pub mod tree;

#[cfg(feature = "log")]
pub use bridge::log;
#[cfg(feature = "tracing")]
pub use bridge::tracing;
pub use collector::Recorder;
pub use context::SpanContext;
pub use future::{spawn, spawn_blocking, FutureExt, InCurrentContext, Instrumented};
pub use id::{SpanId, TraceId};
pub use record::{LogRecord, Relationship, SpanRecord};
pub use reporter::{
    close, flush, init, set_event_handler, tracer, Event, FlushReport, InitError, Options,
    ShutdownGuard, Stats, Tracer,
};
pub use span::{
    baggage_item, current, log, record_error, set_baggage_item, span, tag, Span, SpanBuilder,
    SpanGuard, SpanKind,
};
pub use tag::{Str, Tag, TagList, TagValue, ToTagValue};
