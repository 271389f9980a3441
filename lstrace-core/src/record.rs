//! Finished spans, as recorders receive them.

use crate::clock;
use crate::context::SpanContext;
use crate::tag::{Str, Tag, TagList, TagValue};
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
    /// A log at the given wall-clock time.
    #[must_use]
    pub fn new(time: SystemTime, fields: Vec<Tag>) -> Self {
        LogRecord {
            unix_nanos: clock::system_time_to_unix_nanos(time),
            fields,
        }
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
        self.fields.iter().find(|t| t.key == key).map(|t| &t.value)
    }
}

/// A finished span.
#[derive(Clone, Debug)]
pub struct SpanRecord {
    pub(crate) context: SpanContext,
    pub(crate) parent: Option<(Relationship, u64)>,
    pub(crate) name: Str,
    pub(crate) start_unix_nanos: u64,
    pub(crate) duration_nanos: u64,
    pub(crate) tags: TagList,
    pub(crate) logs: Vec<LogRecord>,
    pub(crate) dropped_logs: u32,
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
        &self.logs
    }

    /// How many logs were dropped because the span had reached the per-span limit.
    #[must_use]
    pub fn dropped_logs(&self) -> u32 {
        self.dropped_logs
    }
}
