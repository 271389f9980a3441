//! The detached span: started, not entered, free to move between threads.

use super::collect_fields;
use crate::clock;
use crate::context::SpanContext;
use crate::tag::{SpanStr, TagValue};
use crate::task::stack::{self, with_thread_spans, Ending, SpanFrame, Stamp};
use std::fmt;
use std::time::SystemTime;

/// A started span that is not entered: it can be sent to another thread, enter a scope
/// there, or instrument a future. It finishes on [`Span::finish`] or on drop.
#[must_use = "a span finishes when it is dropped"]
pub struct Span {
    pub(crate) frame: Option<SpanFrame>,
}

impl Span {
    /// A span that records nothing.
    pub fn noop() -> Self {
        Span { frame: None }
    }

    /// True when this span records nothing.
    #[must_use]
    pub fn is_noop(&self) -> bool {
        !self.frame.as_ref().is_some_and(SpanFrame::is_recording)
    }

    /// The span's context (`None` for a no-op span).
    #[must_use]
    pub fn context(&self) -> Option<SpanContext> {
        self.frame.as_ref().map(|f| f.context().clone())
    }

    /// Sets a tag.
    pub fn set_tag(&mut self, key: impl Into<SpanStr>, value: impl Into<TagValue>) {
        if let Some(f) = &mut self.frame {
            f.set_tag(key.into(), value.into());
        }
    }

    /// Adds a log with the given fields, timestamped now.
    pub fn log<K: Into<SpanStr>, V: Into<TagValue>>(
        &mut self,
        fields: impl IntoIterator<Item = (K, V)>,
    ) {
        if let Some(f) = &mut self.frame {
            f.log(Stamp::At(clock::now()), collect_fields(fields));
        }
    }

    /// Adds a log with the given fields and time.
    pub fn log_at<K: Into<SpanStr>, V: Into<TagValue>>(
        &mut self,
        time: SystemTime,
        fields: impl IntoIterator<Item = (K, V)>,
    ) {
        if let Some(f) = &mut self.frame {
            f.log(
                Stamp::UnixNanos(clock::system_time_to_unix_nanos(time)),
                collect_fields(fields),
            );
        }
    }

    /// Sets a baggage item.
    pub fn set_baggage_item(&mut self, key: impl Into<String>, value: impl Into<String>) {
        if let Some(f) = &mut self.frame {
            f.context_mut().set_baggage_item(key, value);
        }
    }

    /// Runs `f` with this span entered (current), then takes it back out, unfinished.
    pub fn in_scope<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let Some(key) = with_thread_spans(|local| local.push_from(&mut self.frame)).flatten()
        else {
            return f();
        };
        // Takes the frame back even if `f` panics, so the span is not lost or left current.
        struct Exit<'a> {
            span: &'a mut Span,
            key: u64,
        }
        impl Drop for Exit<'_> {
            fn drop(&mut self) {
                with_thread_spans(|local| local.pop_into(self.key, &mut self.span.frame));
                if std::thread::panicking() {
                    if let Some(f) = &mut self.span.frame {
                        f.set_tag("error".into(), TagValue::Bool(true));
                    }
                }
            }
        }
        let _exit = Exit { span: self, key };
        f()
    }

    /// Finishes the span now.
    pub fn finish(mut self) {
        stack::finish_detached(&mut self.frame, Ending::Normal);
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        stack::finish_detached(&mut self.frame, Ending::Normal);
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Span")
            .field("context", &self.context())
            .finish()
    }
}
