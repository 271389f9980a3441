//! Draining: moving finished spans out of every ring into the installed recorder.

use super::installed;
use super::registry::REGISTRY;
use super::ring::{self, Settle};
use crate::clock::{self, Timeline};
use crate::record::SpanRecord;
use std::fmt;

/// Moves every span finished so far, on every thread, into the installed recorder, and tells
/// it how many were dropped on the way. Returns how many spans were moved.
pub fn drain() -> usize {
    let Some(recorder) = installed() else {
        return 0;
    };
    let mut moved = 0;
    let mut timeline = None;
    let dropped = REGISTRY.drain(|consumer| {
        // The recorder reads each span in its slot, with its raw times converted there, and
        // the span is dropped there after: nothing is copied on the way. Whatever the
        // recorder leaves unread stays in the ring for the next drain.
        if consumer.len() == 0 {
            return;
        }
        // The spans' readings become wall-clock times on the line as anchored now (under
        // the drain's lock, so that drains anchor in turn).
        let timeline = timeline.get_or_insert_with(|| {
            clock::reanchor();
            clock::timeline()
        });
        let mut spans = Spans(consumer.drain_iter(&*timeline));
        let count = spans.len();
        recorder.record(&mut spans);
        moved += count - spans.len();
    });
    drop(timeline);
    if dropped > 0 {
        recorder.dropped(dropped);
    }
    moved
}

/// Spans waiting in the per-thread rings.
#[must_use]
pub(crate) fn pending() -> usize {
    REGISTRY.pending()
}

/// A batch of finished spans, handed to [`Recorder::record`](super::Recorder::record) by
/// [`drain`]: the spans waiting in one thread's ring, read where they wait.
///
/// Not an [`Iterator`]: [`Spans::next`] lends each span until the next call, when it is
/// dropped in its slot, so that a recorder that only reads spans (an encoder, a counter)
/// copies none. [`Spans::next_owned`] moves a span out, for a recorder that keeps it.
/// The spans a recorder leaves unread are offered again by the next drain.
///
/// ```
/// use lstrace_core::recorder::{Recorder, Spans};
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// /// Counts spans and the tags on them.
/// #[derive(Default)]
/// struct Counter {
///     spans: AtomicU64,
///     tags: AtomicU64,
/// }
///
/// impl Recorder for Counter {
///     fn record(&self, spans: &mut Spans<'_>) {
///         while let Some(span) = spans.next() {
///             self.spans.fetch_add(1, Ordering::Relaxed);
///             self.tags.fetch_add(span.tags().len() as u64, Ordering::Relaxed);
///         }
///     }
///
///     fn dropped(&self, _count: u64) {}
///
///     fn wake(&self) {}
/// }
/// ```
pub struct Spans<'a>(ring::Drain<'a, SpanRecord, &'a Timeline>);

impl Spans<'_> {
    /// The next span, lent until the next call on this batch; `None` after the last.
    // Not `Iterator::next`: the span stays in its ring slot, borrowed from the batch.
    #[allow(clippy::should_implement_trait)]
    #[inline]
    pub fn next(&mut self) -> Option<&SpanRecord> {
        self.0.next_lent().map(|span| &*span)
    }

    /// The next span, moved out of the batch; `None` after the last.
    #[inline]
    pub fn next_owned(&mut self) -> Option<SpanRecord> {
        self.0.next()
    }

    /// Passes over the spans left in the batch, dropping them, and returns how many there
    /// were: for a recorder that counts spans it will not keep.
    pub fn discard(&mut self) -> usize {
        let mut count = 0;
        while self.0.next_lent().is_some() {
            count += 1;
        }
        count
    }

    /// How many spans are left in the batch.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no span is left in the batch.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Spans<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spans").field("len", &self.len()).finish()
    }
}

/// A span's raw times become wall-clock times on the line as the drain anchored it.
impl Settle<SpanRecord> for &Timeline {
    #[inline]
    fn settle(&mut self, span: &mut SpanRecord) {
        span.settle(self);
    }
}
