//! Draining: moving finished spans out of every ring into the installed recorder.

use super::installed;
use super::registry::REGISTRY;
use crate::clock;
use crate::record::SpanRecord;

/// Moves every span finished so far, on every thread, into the installed recorder, and tells
/// it how many were dropped on the way. Returns how many spans were moved.
pub fn drain() -> usize {
    let Some(recorder) = installed() else {
        return 0;
    };
    let mut moved = 0;
    let mut timeline = None;
    let dropped = REGISTRY.drain(|consumer| {
        // Straight out of the ring: each span is copied once, into the recorder's hands, and
        // its raw times converted on the way. Whatever the recorder leaves unread stays in
        // the ring for the next drain.
        if consumer.len() == 0 {
            return;
        }
        // The spans' readings become wall-clock times on the line as anchored now (under
        // the drain's lock, so that drains anchor in turn).
        let timeline = timeline.get_or_insert_with(|| {
            clock::reanchor();
            clock::timeline()
        });
        let mut spans = consumer.drain_iter(|span: &mut SpanRecord| span.settle(timeline));
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
