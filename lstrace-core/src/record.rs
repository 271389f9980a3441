//! Finished spans, as recorders receive them.

use crate::clock::{self, Ticks, Timeline};
use crate::context::SpanContext;
use crate::in_place::move_unless_empty;
use crate::recorder;
use crate::tag::{SpanStr, Tag, TagList, TagValue};
use std::mem::ManuallyDrop;
use std::time::{Duration, SystemTime};

/// How a span relates to the span it references. Non-exhaustive, as [`SpanKind`] is: other
/// kinds of reference (links, say) may come, so a `match` on it needs a `_` arm.
///
/// [`SpanKind`]: crate::SpanKind
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    pub(crate) fields: LogFields,
}

/// A log's fields: up to two are held inline (no allocation), more on the heap.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum LogFields {
    One([Tag; 1]),
    Two([Tag; 2]),
    /// None, more than two, or fields given as a `Vec`.
    Heap(Vec<Tag>),
}

/// How many fields a log holds inline.
const INLINE_FIELDS: usize = 2;

impl LogFields {
    /// The fields `fields` yields, in order.
    #[inline]
    pub(crate) fn collect(mut fields: impl Iterator<Item = Tag>) -> LogFields {
        let Some(first) = fields.next() else {
            return LogFields::Heap(Vec::new());
        };
        let Some(second) = fields.next() else {
            return LogFields::One([first]);
        };
        let Some(third) = fields.next() else {
            return LogFields::Two([first, second]);
        };
        let mut all = Vec::with_capacity(INLINE_FIELDS + 1 + fields.size_hint().0);
        all.extend([first, second, third]);
        all.extend(fields);
        LogFields::Heap(all)
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[Tag] {
        match self {
            LogFields::One(fields) => fields,
            LogFields::Two(fields) => fields,
            LogFields::Heap(fields) => fields,
        }
    }
}

impl LogRecord {
    /// A log with a raw time (see [`SpanRecord::settle`]).
    #[inline]
    pub(crate) fn raw(raw_time: u64, fields: LogFields) -> LogRecord {
        LogRecord {
            unix_nanos: raw_time,
            fields,
        }
    }

    /// The fields, in the order given.
    #[must_use]
    pub fn fields(&self) -> &[Tag] {
        self.fields.as_slice()
    }

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
        self.fields()
            .iter()
            .find(|t| t.key == key)
            .map(|t| &t.value)
    }
}

/// A finished span.
///
/// Finished spans wait in per-thread rings of these: three tags and one log of two fields are
/// held inline, so that the common span allocates nothing, and more live out of line.
#[derive(Clone, Debug)]
pub struct SpanRecord {
    pub(crate) context: SpanContext,
    pub(crate) parent: Option<(Relationship, u64)>,
    pub(crate) name: SpanStr,
    pub(crate) start_unix_nanos: u64,
    pub(crate) duration_nanos: u64,
    pub(crate) tags: TagList,
    pub(crate) logs: LogList,
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
            self.name.truncate(max_name);
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
        for log in self.logs.as_mut_slice() {
            log.unix_nanos = place(log.unix_nanos).max(start);
        }
    }
}

/// A span's logs: one is held inline, more (or any dropped) on the heap.
#[derive(Clone, Debug, Default)]
pub(crate) struct LogList(ManuallyDrop<LogsRepr>);

#[derive(Clone, Debug, Default)]
enum LogsRepr {
    #[default]
    None,
    One(LogRecord),
    Heap(Box<Logs>),
}

/// The logs of a span that has more than one (or dropped some), and how many more the
/// per-span limit dropped.
#[derive(Clone, Debug, Default)]
pub(crate) struct Logs {
    pub(crate) records: Vec<LogRecord>,
    pub(crate) dropped: u32,
}

impl Drop for LogList {
    /// Most spans have no logs: their list is dropped with one check, where the compiler's
    /// drop would first tell the inline log's variants apart.
    #[inline]
    fn drop(&mut self) {
        if !self.is_empty() {
            // SAFETY: dropped once, here; the list is not used after.
            unsafe { ManuallyDrop::drop(&mut self.0) }
        }
    }
}

impl LogList {
    /// An empty list.
    #[inline]
    pub(crate) const fn new() -> LogList {
        LogList(ManuallyDrop::new(LogsRepr::None))
    }

    /// Adds `log`, or drops and counts it when the list already holds `max`.
    #[inline]
    pub(crate) fn push_within(&mut self, log: LogRecord, max: usize) {
        match &mut *self.0 {
            repr @ LogsRepr::None if max > 0 => *repr = LogsRepr::One(log),
            _ => self.push_to_heap(log, max),
        }
    }

    #[cold]
    fn push_to_heap(&mut self, log: LogRecord, max: usize) {
        let logs = self.heap();
        if logs.records.len() < max {
            logs.records.push(log);
        } else {
            logs.dropped = logs.dropped.saturating_add(1);
        }
    }

    /// Counts `n` logs dropped before they reached the list.
    #[cfg(feature = "tracing")]
    pub(crate) fn count_dropped(&mut self, n: u32) {
        let logs = self.heap();
        logs.dropped = logs.dropped.saturating_add(n);
    }

    /// The logs on the heap, moved there first if need be.
    #[cold]
    pub(crate) fn heap(&mut self) -> &mut Logs {
        let repr = &mut *self.0;
        if !matches!(repr, LogsRepr::Heap(_)) {
            let records = match std::mem::take(repr) {
                LogsRepr::One(log) => {
                    let mut records = Vec::with_capacity(2);
                    records.push(log);
                    records
                }
                _ => Vec::new(),
            };
            *repr = LogsRepr::Heap(Box::new(Logs {
                records,
                dropped: 0,
            }));
        }
        match repr {
            LogsRepr::Heap(logs) => logs,
            _ => unreachable!("moved to the heap above"),
        }
    }

    /// True when there are no logs and none were dropped.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        matches!(*self.0, LogsRepr::None)
    }

    /// The logs, in the order they were added.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[LogRecord] {
        match &*self.0 {
            LogsRepr::None => &[],
            LogsRepr::One(log) => std::slice::from_ref(log),
            LogsRepr::Heap(logs) => &logs.records,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [LogRecord] {
        match &mut *self.0 {
            LogsRepr::None => &mut [],
            LogsRepr::One(log) => std::slice::from_mut(log),
            LogsRepr::Heap(logs) => &mut logs.records,
        }
    }

    /// How many logs the per-span limit dropped.
    pub(crate) fn dropped(&self) -> u32 {
        match &*self.0 {
            LogsRepr::Heap(logs) => logs.dropped,
            _ => 0,
        }
    }

    /// The logs and how many were dropped.
    #[cfg(feature = "tracing")]
    pub(crate) fn into_parts(mut self) -> (Vec<LogRecord>, u32) {
        match std::mem::take(&mut *self.0) {
            LogsRepr::None => (Vec::new(), 0),
            LogsRepr::One(log) => (vec![log], 0),
            LogsRepr::Heap(logs) => (logs.records, logs.dropped),
        }
    }

    /// Moves a list from `src` to `dst`: an empty list (most spans') is written anew rather
    /// than copied with the room for a log.
    ///
    /// # Safety
    /// As [`move_unless_empty`]'s: `src` points to a valid list that the caller gives up;
    /// `dst` to memory for a list, apart from `src`, which is overwritten without being
    /// dropped.
    #[inline]
    pub(crate) unsafe fn move_to(src: *const LogList, dst: *mut LogList) {
        // SAFETY: as the caller promises; an empty list owns nothing.
        unsafe { move_unless_empty(src, dst, LogList::is_empty, LogList::new) }
    }
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
        self.logs.as_slice()
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
        self.logs.dropped()
    }
}

// A finished span with three tags and a log inline waits in a ring slot of this size.
const _: () = assert!(std::mem::size_of::<SpanRecord>() <= 352);
const _: () = assert!(std::mem::size_of::<LogList>() <= 104);
// Only the reporter's encoder tests build logs this way.
#[cfg(all(test, feature = "reporter"))]
impl LogList {
    /// The list a span gets when `logs` are added to it in order (inline or on the heap,
    /// as the span would hold them), with `dropped` more counted.
    pub(crate) fn of(logs: Vec<LogRecord>, dropped: u32) -> LogList {
        let mut list = LogList::new();
        for log in logs {
            list.push_within(log, usize::MAX);
        }
        if dropped > 0 {
            list.heap().dropped = dropped;
        }
        list
    }
}

#[cfg(all(test, feature = "reporter"))]
impl LogRecord {
    /// A log of `fields` at `unix_nanos`, held as a span would hold it.
    pub(crate) fn of(unix_nanos: u64, fields: Vec<Tag>) -> LogRecord {
        LogRecord::raw(unix_nanos, LogFields::collect(fields.into_iter()))
    }
}
