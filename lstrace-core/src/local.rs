//! The per-thread stack of entered spans, and finishing a span into the thread's ring.
//!
//! A frame is the live state of an entered span (or just a context, for scopes that carry a
//! parent without recording). Synchronous guards keep their frame here from start to finish;
//! an instrumented future moves its frames in for the length of each poll and back out after,
//! which is what makes the current span belong to the task rather than to the thread.

use crate::clock::{self, Instant};
use crate::collector::{self, Producer};
use crate::context::SpanContext;
use crate::record::{LogRecord, Relationship, SpanRecord};
use crate::tag::{Str, Tag, TagList, TagValue};
use std::cell::RefCell;

/// The recording half of a frame: what becomes a [`SpanRecord`] when the span finishes.
pub(crate) struct Live {
    pub(crate) parent: Option<(Relationship, u64)>,
    pub(crate) name: Str,
    pub(crate) start: Instant,
    pub(crate) tags: TagList,
    pub(crate) logs: Vec<LogRecord>,
    pub(crate) dropped_logs: u32,
}

pub(crate) struct Frame {
    /// Identifies the frame for its guard: the span id for a live span, a random key for a
    /// context-only frame (whose context may be entered several times).
    pub(crate) key: u64,
    pub(crate) context: SpanContext,
    pub(crate) live: Option<Live>,
}

/// Why a span finished, when it is not the normal way.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Normal,
    /// The code inside panicked: the span is marked `error = true`.
    Panicked,
    /// The future was dropped before it completed: the span is marked `cancelled = true`.
    Cancelled,
}

impl Frame {
    pub(crate) fn set_tag(&mut self, key: Str, value: TagValue) {
        if let Some(live) = &mut self.live {
            live.tags.set(key, value);
        }
    }

    pub(crate) fn log(&mut self, unix_nanos: u64, fields: Vec<Tag>) {
        if let Some(live) = &mut self.live {
            if live.logs.len() < collector::max_logs_per_span() {
                live.logs.push(LogRecord { unix_nanos, fields });
            } else {
                live.dropped_logs = live.dropped_logs.saturating_add(1);
            }
        }
    }

    /// Turns a finished frame into its record; `None` for a context-only frame.
    pub(crate) fn into_record(self, end: Instant, ending: Ending) -> Option<SpanRecord> {
        let mut live = self.live?;
        match ending {
            Ending::Normal => {}
            Ending::Panicked => live.tags.set("error".into(), TagValue::Bool(true)),
            Ending::Cancelled => live.tags.set("cancelled".into(), TagValue::Bool(true)),
        }
        let duration = if end >= live.start {
            end.duration_since(live.start).as_nanos()
        } else {
            0
        };
        Some(SpanRecord {
            context: self.context,
            parent: live.parent,
            name: live.name,
            start_unix_nanos: clock::unix_nanos(live.start),
            duration_nanos: u64::try_from(duration).unwrap_or(u64::MAX),
            tags: live.tags,
            logs: live.logs,
            dropped_logs: live.dropped_logs,
        })
    }
}

#[derive(Default)]
pub(crate) struct Local {
    pub(crate) stack: Vec<Frame>,
    producer: Option<Producer>,
}

impl Local {
    pub(crate) fn top(&self) -> Option<&Frame> {
        self.stack.last()
    }

    pub(crate) fn top_mut(&mut self) -> Option<&mut Frame> {
        self.stack.last_mut()
    }

    pub(crate) fn find_mut(&mut self, key: u64) -> Option<&mut Frame> {
        self.stack.iter_mut().rev().find(|f| f.key == key)
    }

    /// Removes the frame with `key` (normally the top one).
    pub(crate) fn remove(&mut self, key: u64) -> Option<Frame> {
        if self.stack.last().is_some_and(|f| f.key == key) {
            return self.stack.pop();
        }
        let at = self.stack.iter().rposition(|f| f.key == key)?;
        Some(self.stack.remove(at))
    }

    pub(crate) fn finish(&mut self, frame: Frame, end: Instant, ending: Ending) {
        if let Some(record) = frame.into_record(end, ending) {
            collector::producer(&mut self.producer).push(record);
        }
    }
}

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
}

/// Runs `f` on this thread's stack. Returns `None` (and `f` is not run) when the thread is
/// shutting down or the stack is already borrowed further up this call chain: tracing then
/// degrades to a no-op rather than panicking in the user's program.
#[inline]
pub(crate) fn with_local<R>(f: impl FnOnce(&mut Local) -> R) -> Option<R> {
    LOCAL
        .try_with(|local| local.try_borrow_mut().ok().map(|mut l| f(&mut l)))
        .ok()
        .flatten()
}

/// Finishes a frame that is not on this thread's stack (a detached span, a dropped future).
pub(crate) fn finish_detached(frame: Frame, ending: Ending) {
    if frame.live.is_none() {
        return;
    }
    let end = clock::now();
    let mut pending = Some(frame);
    with_local(|local| {
        if let Some(frame) = pending.take() {
            local.finish(frame, end, ending);
        }
    });
    if pending.is_some() {
        // The thread is shutting down: the span cannot be recorded, but it is counted.
        collector::lost(1);
    }
}
