//! Free functions on the current span: its context, tags, logs, errors and baggage.

use super::collect_fields;
use crate::clock;
use crate::context::SpanContext;
use crate::record::LogFields;
use crate::recorder;
use crate::tag::{SpanStr, Tag, TagValue};
use crate::task::stack::{with_thread_spans, Stamp};
use std::fmt;

/// The current span's context: of this task inside a traced future, else of this thread.
///
/// Move it to another thread or task and [`enter`](SpanContext::enter) it there, inject it
/// into outgoing headers, or make it the parent of a span with [`SpanBuilder::child_of`].
///
/// Without a tracer, this is the context entered last (by [`SpanContext::enter`], or a span
/// started as the child of an extracted context): contexts pass through a process that
/// records nothing.
///
/// [`SpanBuilder::child_of`]: crate::SpanBuilder::child_of
#[must_use]
pub fn current() -> Option<SpanContext> {
    with_thread_spans(|local| local.top().map(|f| f.context().clone())).flatten()
}

/// Sets a tag on the current span (no-op outside any span), as [`EnteredSpan::set_tag`] and
/// [`Span::set_tag`] do on theirs. A tag set again with the same key replaces its value.
///
/// [`EnteredSpan::set_tag`]: crate::EnteredSpan::set_tag
/// [`Span::set_tag`]: crate::Span::set_tag
pub fn set_tag(key: impl Into<SpanStr>, value: impl Into<TagValue>) {
    if !recorder::is_enabled() {
        return;
    }
    let (key, value) = (key.into(), value.into());
    with_thread_spans(|local| {
        if let Some(f) = local.top_mut() {
            f.set_tag(key, value);
        }
    });
}

/// Adds a log with the given fields to the current span, timestamped now.
///
/// ```
/// # let _recorder = lstrace_core::testing::TestRecorder::install();
/// # let _span = lstrace_core::span("op").start();
/// lstrace_core::log([("event", "cache_miss"), ("key", "user:7")]);
/// ```
pub fn log<K: Into<SpanStr>, V: Into<TagValue>>(fields: impl IntoIterator<Item = (K, V)>) {
    if !recorder::is_enabled() {
        return;
    }
    let fields = collect_fields(fields);
    let now = Stamp::At(clock::now());
    with_thread_spans(|local| {
        if let Some(f) = local.top_mut() {
            f.log(now, fields);
        }
    });
}

/// Marks the current span as failed: tag `error = true` and a log with `event = "error"`
/// and `message` = the error's text.
pub fn record_error(error: &(dyn fmt::Display + '_)) {
    if !recorder::is_enabled() {
        return;
    }
    let message = error.to_string();
    let now = Stamp::At(clock::now());
    with_thread_spans(|local| {
        if let Some(f) = local.top_mut() {
            f.set_tag("error".into(), TagValue::Bool(true));
            f.log(
                now,
                LogFields::Two([Tag::new("event", "error"), Tag::new("message", message)]),
            );
        }
    });
}

/// Sets a baggage item on the current span: its later children and the processes it calls
/// carry it. Works without a tracer too, on the context entered last.
pub fn set_baggage_item(key: impl Into<String>, value: impl Into<String>) {
    let (key, value) = (key.into(), value.into());
    with_thread_spans(|local| {
        if let Some(f) = local.top_mut() {
            f.context_mut().set_baggage_item(key, value);
        }
    });
}

/// A baggage item of the current span.
#[must_use]
pub fn baggage_item(key: &str) -> Option<String> {
    current().and_then(|c| c.baggage_item(key).map(str::to_owned))
}
