//! Per-span and per-context limits, and the counts of what they cut.

use super::sync::Ordering;
use std::sync::atomic::{AtomicU64, AtomicUsize};

static MAX_LOGS_PER_SPAN: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_LOGS_PER_SPAN);
static MAX_TAGS_PER_SPAN: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_TAGS_PER_SPAN);
static MAX_BAGGAGE_ITEMS: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_BAGGAGE_ITEMS);
static MAX_OPERATION_NAME_LEN: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_OPERATION_NAME_LEN);

/// The most logs a span keeps unless configured otherwise: the LightStep Go tracer's.
pub const DEFAULT_MAX_LOGS_PER_SPAN: usize = 500;

/// The most tags a span keeps unless configured otherwise.
pub const DEFAULT_MAX_TAGS_PER_SPAN: usize = 1024;

/// The most baggage items a context carries unless configured otherwise: W3C Baggage's
/// limit of list members in one header.
pub const DEFAULT_MAX_BAGGAGE_ITEMS: usize = 180;

/// The longest operation name, in bytes, unless configured otherwise.
pub const DEFAULT_MAX_OPERATION_NAME_LEN: usize = 1024;

/// Sets the most logs a span keeps; later logs are dropped and counted on the span. The
/// tracer sets it from [`Options::max_logs_per_span`](crate::Options::max_logs_per_span).
pub(crate) fn set_max_logs_per_span(max: usize) {
    MAX_LOGS_PER_SPAN.store(max, Ordering::Relaxed);
}

pub(crate) fn max_logs_per_span() -> usize {
    MAX_LOGS_PER_SPAN.load(Ordering::Relaxed)
}

/// Sets the most tags a span keeps; tags with new keys after that are dropped and counted on
/// the span ([`SpanRecord::dropped_tags`]). A tag whose key the span has replaces its value.
/// The tracer sets it from `Options::max_tags_per_span`.
///
/// [`SpanRecord::dropped_tags`]: crate::SpanRecord::dropped_tags
pub(crate) fn set_max_tags_per_span(max: usize) {
    MAX_TAGS_PER_SPAN.store(max, Ordering::Relaxed);
}

#[inline]
pub(crate) fn max_tags_per_span() -> usize {
    MAX_TAGS_PER_SPAN.load(Ordering::Relaxed)
}

/// Sets the most baggage items a context carries; items with new keys after that are
/// dropped and counted on the context
/// ([`SpanContext::dropped_baggage_items`](crate::SpanContext::dropped_baggage_items)) and
/// in [`baggage_items_dropped`]. The tracer sets it from `Options::max_baggage_items`.
pub(crate) fn set_max_baggage_items(max: usize) {
    MAX_BAGGAGE_ITEMS.store(max, Ordering::Relaxed);
}

pub(crate) fn max_baggage_items() -> usize {
    MAX_BAGGAGE_ITEMS.load(Ordering::Relaxed)
}

/// Sets the longest operation name, in bytes: longer names are cut on a character boundary
/// as their spans reach the recorder, and counted in [`operation_names_truncated`]. The
/// tracer sets it from `Options::max_operation_name_len`.
#[cfg(feature = "reporter")]
pub(crate) fn set_max_operation_name_len(max: usize) {
    MAX_OPERATION_NAME_LEN.store(max, Ordering::Relaxed);
}

pub(crate) fn max_operation_name_len() -> usize {
    MAX_OPERATION_NAME_LEN.load(Ordering::Relaxed)
}

static BAGGAGE_ITEMS_DROPPED: AtomicU64 = AtomicU64::new(0);
static OPERATION_NAMES_TRUNCATED: AtomicU64 = AtomicU64::new(0);

/// How many baggage items with new keys contexts have refused since the process started,
/// because they carried the most items allowed (`Options::max_baggage_items`, by default
/// [`DEFAULT_MAX_BAGGAGE_ITEMS`]). The installed tracer reports them (`baggage.dropped`).
#[must_use]
pub fn baggage_items_dropped() -> u64 {
    BAGGAGE_ITEMS_DROPPED.load(Ordering::Relaxed)
}

/// How many operation names have been cut since the process started, because they were
/// longer than allowed (`Options::max_operation_name_len`, by default
/// [`DEFAULT_MAX_OPERATION_NAME_LEN`]). The installed tracer reports them
/// (`operation_names.truncated`).
#[must_use]
pub fn operation_names_truncated() -> u64 {
    OPERATION_NAMES_TRUNCATED.load(Ordering::Relaxed)
}

pub(crate) fn count_baggage_item_dropped() {
    BAGGAGE_ITEMS_DROPPED.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn count_operation_name_truncated() {
    OPERATION_NAMES_TRUNCATED.fetch_add(1, Ordering::Relaxed);
}
