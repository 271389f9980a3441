//! Finished spans, as recorders receive them.

use crate::clock::{self, Ticks, Timeline};
use crate::context::SpanContext;
use crate::recorder;
use crate::tag::{truncate_str, Str, Tag, TagList, TagValue};
use std::time::{Duration, SystemTime};

/// How a span relates to the span it references.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relationship {
    /// The parent waits for this span's result (the default).
    ChildOf,
    /// The referenced span does not wait for this one (fire-and-forget work, queues).
    FollowsFrom,
}

/// A timestamped log on a span: a list of fields (`event`, `message`, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct LogRecord {
    pub(crate) unix_nanos: u64,
    /// The fields, in the order given.
    pub fields: Vec<Tag>,
}

impl LogRecord {
    /// When it was logged (wall clock).
    #[must_use]
    pub fn time(&self) -> SystemTime {
        clock::unix_nanos_to_system_time(self.unix_nanos)
    }

    /// Nanoseconds since the Unix epoch.
    #[must_use]
    pub fn unix_nanos(&self) -> u64 {
        self.unix_nanos
    }

    /// The value of a field.
    #[must_use]
    pub fn field(&self, key: &str) -> Option<&TagValue> {
        self.fields.iter().find(|t| t.key == key).map(|t| &t.value)
    }
}

/// A finished span.
///
/// Kept to 256 bytes with three inline tags, since finished spans wait in per-thread rings
/// of these: the logs, which most spans do not have, live out of line.
#[derive(Clone, Debug)]
pub struct SpanRecord {
    pub(crate) context: SpanContext,
    pub(crate) parent: Option<(Relationship, u64)>,
    pub(crate) name: Str,
    pub(crate) start_unix_nanos: u64,
    pub(crate) duration_nanos: u64,
    pub(crate) tags: TagList,
    pub(crate) logs: Option<Box<Logs>>,
}

/// Marks an explicit time (a start or log time given by the caller) in a raw record (see
/// [`SpanRecord::settle`]).
pub(crate) const EXPLICIT_TIME: u64 = 1 << 63;

impl SpanRecord {
    /// Converts the times of a record taken out of a ring into nanoseconds since the epoch,
    /// on `timeline`.
    ///
    /// While a span waits in its thread's ring its times are raw, so that the instrumented
    /// thread never scales a clock reading: `start_unix_nanos` and each log's time hold a
    /// clock reading (or, with [`EXPLICIT_TIME`] set, an explicit time in nanoseconds since
    /// the epoch) and `duration_nanos` holds the end's clock reading. The collector converts
    /// them as it hands the span to the recorder.
    ///
    /// The span's readings are placed with the segment of the line of its start (of its
    /// end, for an explicit start), those far from it with their own (see
    /// [`Timeline::place`]); a log is never placed before the start. An operation name over
    /// the per-span limit is cut (and counted) here too, off the instrumented thread.
    #[inline]
    pub(crate) fn settle(&mut self, timeline: &Timeline) {
        let max_name = recorder::max_operation_name_len();
        if self.name.len() > max_name {
            truncate_str(&mut self.name, max_name);
            recorder::count_operation_name_truncated();
        }
        let end = Ticks(self.duration_nanos);
        let raw_start = self.start_unix_nanos;
        let first = if raw_start & EXPLICIT_TIME == 0 {
            Ticks(raw_start)
        } else {
            end
        };
        let segment = timeline.segment(first);
        let place = |raw: u64| {
            if raw & EXPLICIT_TIME == 0 {
                timeline.place(segment, first, Ticks(raw))
            } else {
                raw & !EXPLICIT_TIME
            }
        };
        let start = place(raw_start);
        self.start_unix_nanos = start;
        self.duration_nanos = timeline.place(segment, first, end).saturating_sub(start);
        if let Some(logs) = &mut self.logs {
            for log in &mut logs.records {
                log.unix_nanos = place(log.unix_nanos).max(start);
            }
        }
    }
}

/// A span's logs, and how many more the per-span limit dropped.
#[derive(Clone, Debug, Default)]
pub(crate) struct Logs {
    pub(crate) records: Vec<LogRecord>,
    pub(crate) dropped: u32,
}

impl SpanRecord {
    /// The span's context (trace id, span id, sampled flag, baggage).
    #[must_use]
    pub fn context(&self) -> &SpanContext {
        &self.context
    }

    /// The referenced span's id and how this span relates to it; `None` for a root span.
    #[must_use]
    pub fn parent(&self) -> Option<(Relationship, u64)> {
        self.parent
    }

    /// The parent span id, whatever the relationship.
    #[must_use]
    pub fn parent_id(&self) -> Option<u64> {
        self.parent.map(|(_, id)| id)
    }

    /// The operation name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When the span started (wall clock).
    #[must_use]
    pub fn start_time(&self) -> SystemTime {
        clock::unix_nanos_to_system_time(self.start_unix_nanos)
    }

    /// Nanoseconds since the Unix epoch at which the span started.
    #[must_use]
    pub fn start_unix_nanos(&self) -> u64 {
        self.start_unix_nanos
    }

    /// How long the span lasted, measured with the monotonic clock.
    #[must_use]
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.duration_nanos)
    }

    /// The tags.
    #[must_use]
    pub fn tags(&self) -> &TagList {
        &self.tags
    }

    /// The value of a tag.
    #[must_use]
    pub fn tag(&self, key: &str) -> Option<&TagValue> {
        self.tags.get(key)
    }

    /// The logs, in the order they were added.
    #[must_use]
    pub fn logs(&self) -> &[LogRecord] {
        self.logs.as_deref().map_or(&[], |logs| &logs.records)
    }

    /// How many tags were dropped because the span had reached the per-span limit (a tag
    /// whose key the span already had replaces its value: it is never dropped).
    #[must_use]
    pub fn dropped_tags(&self) -> u32 {
        self.tags.dropped()
    }

    /// How many logs were dropped because the span had reached the per-span limit.
    #[must_use]
    pub fn dropped_logs(&self) -> u32 {
        self.logs.as_deref().map_or(0, |logs| logs.dropped)
    }
}

// A finished span with three inline tags waits in a ring slot of 256 bytes at most.
const _: () = assert!(std::mem::size_of::<SpanRecord>() <= 256);
