//! `log` records as logs on the current lstrace span: a [`log::Log`] (feature `log`).
//!
//! ```
//! # let capture = lstrace_core::testing::TestRecorder::install().capture();
//! lstrace_core::bridge::log::logger().install().expect("the process's first logger");
//! # capture.in_scope(|| {
//! let _span = lstrace_core::span("import").start();
//! log::warn!("skipped {} rows", 2);
//! # });
//! # let span = capture.span("import").unwrap();
//! # assert_eq!(span.logs()[0].field("message").and_then(|v| v.as_str()), Some("skipped 2 rows"));
//! ```
//!
//! A record becomes a log with the fields `level`, `message` and `target`, on the innermost
//! span of the thread or task (a `#[traced]` one or, with the `tracing` bridge, a `tracing`
//! one). Records made outside any span, or while no tracer records, only go to the next
//! logger. A process that already turns `log` records into `tracing` events (`tracing-log`'s
//! `LogTracer`, which `tracing_subscriber`'s `init` installs) needs no other logger: the
//! `tracing` bridge records those events.

use crate::clock;
use crate::record::LogFields;
use crate::recorder;
use crate::tag::{Tag, TagValue};
use crate::task::stack::{with_thread_spans, Stamp};
use ::log::{LevelFilter, Log, Metadata, Record, SetLoggerError};
use std::fmt;

/// A logger that records each record on the current span, then hands it to the next logger
/// (if any), which prints or ships it as before.
pub struct SpanLogger {
    next: Option<Box<dyn Log>>,
    max_level: LevelFilter,
}

/// A logger that records every level on the current span and passes records on to no one.
#[must_use]
pub fn logger() -> SpanLogger {
    SpanLogger {
        next: None,
        max_level: LevelFilter::Trace,
    }
}

impl SpanLogger {
    /// Hands every record on to `next` too (for example a terminal logger), which decides
    /// for itself which it keeps.
    #[must_use]
    pub fn with_next(mut self, next: impl Log + 'static) -> Self {
        self.next = Some(Box::new(next));
        self
    }

    /// Records only records at `max_level` or more severe (default: every level); also the
    /// `log` crate's maximum level when installed.
    #[must_use]
    pub fn with_max_level(mut self, max_level: LevelFilter) -> Self {
        self.max_level = max_level;
        self
    }

    /// Installs this logger as the process's logger.
    ///
    /// # Errors
    /// When a logger was installed before: `log` allows one per process.
    pub fn install(self) -> Result<(), SetLoggerError> {
        let max_level = self.max_level;
        ::log::set_boxed_logger(Box::new(self))?;
        ::log::set_max_level(max_level);
        Ok(())
    }
}

impl fmt::Debug for SpanLogger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanLogger")
            .field("next", &self.next.is_some())
            .field("max_level", &self.max_level)
            .finish()
    }
}

impl Log for SpanLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.max_level
            || self
                .next
                .as_ref()
                .is_some_and(|next| next.enabled(metadata))
    }

    fn log(&self, record: &Record<'_>) {
        if record.level() <= self.max_level && recorder::is_enabled() {
            let fields = LogFields::Heap(vec![
                Tag::new("level", TagValue::from_static(record.level().as_str())),
                Tag::new("message", record.args().to_string()),
                Tag::new("target", record.target()),
            ]);
            let now = Stamp::At(clock::now());
            with_thread_spans(|local| {
                if let Some(frame) = local.top_mut() {
                    frame.log(now, fields);
                }
            });
        }
        if let Some(next) = &self.next {
            next.log(record);
        }
    }

    fn flush(&self) {
        if let Some(next) = &self.next {
            next.flush();
        }
    }
}
