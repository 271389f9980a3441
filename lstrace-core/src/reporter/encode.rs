//! A finished span as the collector's `Span` message: typed tags, references, wall-clock
//! times, and the length and count limits applied on the way.

use crate::protocol::{key_value::Value, KeyValue};
use crate::tag::TagValue;
#[cfg(test)]
use crate::{
    protocol::{self, Timestamp},
    record::{Relationship, SpanRecord},
    tag::Tag,
};

/// What is cut from a span before it is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Longest tag or log key, in bytes.
    pub(crate) max_key_len: usize,
    /// Longest string tag or log value, in bytes.
    pub(crate) max_value_len: usize,
    /// Most logs kept per span; the rest are dropped and counted.
    pub(crate) max_logs_per_span: usize,
    /// Report no logs at all (a choice, not a loss: not counted).
    pub(crate) drop_logs: bool,
}

impl Limits {
    /// No cuts: for reporter tags, which the user sets once.
    pub(crate) const UNLIMITED: Limits = Limits {
        max_key_len: usize::MAX,
        max_value_len: usize::MAX,
        max_logs_per_span: usize::MAX,
        drop_logs: false,
    };
}

pub(crate) use crate::tag::truncate;

/// A tag or log field as a typed `KeyValue`, key and string value truncated to the limits.
pub(crate) fn key_value(key: &str, value: &TagValue, limits: &Limits) -> KeyValue {
    let value = match value {
        TagValue::Str(s) => Value::StringValue(truncate(s, limits.max_value_len).to_owned()),
        TagValue::Int(i) => Value::IntValue(*i),
        TagValue::Float(x) => Value::DoubleValue(*x),
        TagValue::Bool(b) => Value::BoolValue(*b),
    };
    KeyValue {
        key: truncate(key, limits.max_key_len).to_owned(),
        value: Some(value),
    }
}

#[cfg(test)]
fn key_values<'a>(tags: impl Iterator<Item = &'a Tag>, limits: &Limits) -> Vec<KeyValue> {
    tags.map(|t| key_value(&t.key, &t.value, limits)).collect()
}

/// A span encoded for the collector, and how many of its logs were dropped (on the span, by
/// the per-span limit, or here, for spans recorded under a higher limit).
#[cfg(test)]
pub(crate) struct EncodedSpan {
    pub(crate) span: protocol::Span,
    pub(crate) logs_dropped: u64,
}

/// The collector's `Span` for a finished span. Reports carry the low 64 bits of the trace id.
///
/// The reporter writes spans with `wire`, straight into bytes; this builds the message they
/// decode to, which is how the tests pin down what `wire` writes.
#[cfg(test)]
pub(crate) fn span(record: &SpanRecord, limits: &Limits) -> EncodedSpan {
    let context = record.context();
    let trace_id = context.trace_id().low();
    let references = record
        .parent()
        .map(|(relationship, parent_id)| protocol::Reference {
            relationship: match relationship {
                Relationship::ChildOf => protocol::Relationship::ChildOf,
                Relationship::FollowsFrom => protocol::Relationship::FollowsFrom,
            } as i32,
            span_context: Some(protocol::SpanContext {
                trace_id,
                span_id: parent_id,
                baggage: Default::default(),
            }),
        })
        .into_iter()
        .collect();
    let recorded_dropped = u64::from(record.dropped_logs());
    let (logs, logs_dropped) = if limits.drop_logs {
        (Vec::new(), 0)
    } else {
        let kept = record.logs().len().min(limits.max_logs_per_span);
        let logs = record.logs()[..kept]
            .iter()
            .map(|log| protocol::Log {
                timestamp: Some(Timestamp::from_unix_nanos(log.unix_nanos())),
                fields: key_values(log.fields.iter(), limits),
            })
            .collect();
        let cut = (record.logs().len() - kept) as u64;
        (logs, recorded_dropped + cut)
    };
    EncodedSpan {
        span: protocol::Span {
            span_context: Some(protocol::SpanContext {
                trace_id,
                span_id: context.span_id().get(),
                baggage: context
                    .baggage()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            }),
            operation_name: record.name().to_owned(),
            references,
            start_timestamp: Some(Timestamp::from_unix_nanos(record.start_unix_nanos())),
            // Whole microseconds, truncated.
            duration_micros: u64::try_from(record.duration().as_micros()).unwrap_or(u64::MAX),
            tags: key_values(record.tags().iter(), limits),
            logs,
        },
        logs_dropped,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::context::id::{SpanId, TraceId};
    use crate::context::SpanContext;
    use crate::record::{LogRecord, Logs};
    use crate::tag::TagList;

    /// A finished span, built directly (unit tests cannot go through the global recorder).
    pub(crate) fn record(name: &str, tags: TagList, logs: Vec<LogRecord>) -> SpanRecord {
        SpanRecord {
            context: SpanContext::new(
                TraceId(0xaaaa_bbbb_cccc_dddd_1111_2222_3333_4444),
                SpanId::new(0x55).unwrap(),
                true,
            ),
            parent: Some((Relationship::FollowsFrom, 0x44)),
            name: name.to_owned().into(),
            start_unix_nanos: 1_700_000_000_123_456_789,
            duration_nanos: 2_999_999,
            tags,
            logs: (!logs.is_empty()).then(|| {
                Box::new(Logs {
                    records: logs,
                    dropped: 0,
                })
            }),
        }
    }

    pub(crate) const LIMITS: Limits = Limits {
        max_key_len: 256,
        max_value_len: 1024,
        max_logs_per_span: 500,
        drop_logs: false,
    };

    #[test]
    fn truncates_on_character_boundaries() {
        assert_eq!(truncate("héllo", 1), "h");
        assert_eq!(truncate("héllo", 2), "h"); // 'é' is two bytes
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("日本", 5), "日");
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn encodes_ids_references_times_and_typed_tags() {
        let tags: TagList = [
            ("s", TagValue::from("text")),
            ("i", TagValue::Int(-7)),
            ("f", TagValue::Float(1.5)),
            ("b", TagValue::Bool(true)),
        ]
        .into_iter()
        .collect();
        let mut record = record("op", tags, Vec::new());
        record.context = record.context.with_baggage_item("user", "ann");
        let span = span(&record, &LIMITS).span;
        let context = span.span_context.unwrap();
        assert_eq!(context.trace_id, 0x1111_2222_3333_4444);
        assert_eq!(context.span_id, 0x55);
        assert_eq!(context.baggage.get("user").map(String::as_str), Some("ann"));
        assert_eq!(span.operation_name, "op");
        assert_eq!(span.references.len(), 1);
        assert_eq!(
            span.references[0].relationship,
            protocol::Relationship::FollowsFrom as i32
        );
        let parent = span.references[0].span_context.as_ref().unwrap();
        assert_eq!(
            (parent.trace_id, parent.span_id),
            (0x1111_2222_3333_4444, 0x44)
        );
        let start = span.start_timestamp.unwrap();
        assert_eq!((start.seconds, start.nanos), (1_700_000_000, 123_456_789));
        assert_eq!(span.duration_micros, 2_999);
        let values: Vec<(&str, &Value)> = span
            .tags
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_ref().unwrap()))
            .collect();
        assert_eq!(
            values,
            [
                ("s", &Value::StringValue("text".into())),
                ("i", &Value::IntValue(-7)),
                ("f", &Value::DoubleValue(1.5)),
                ("b", &Value::BoolValue(true)),
            ]
        );
    }

    #[test]
    fn a_root_span_has_no_reference() {
        let mut record = record("root", TagList::new(), Vec::new());
        record.parent = None;
        assert!(span(&record, &LIMITS).span.references.is_empty());
        record.parent = Some((Relationship::ChildOf, 9));
        assert_eq!(
            span(&record, &LIMITS).span.references[0].relationship,
            protocol::Relationship::ChildOf as i32
        );
    }

    #[test]
    fn applies_length_and_log_limits() {
        let limits = Limits {
            max_key_len: 4,
            max_value_len: 5,
            max_logs_per_span: 2,
            drop_logs: false,
        };
        let tags: TagList = [("long-key", TagValue::from("ünïcödé"))]
            .into_iter()
            .collect();
        let logs: Vec<LogRecord> = (0..4i64)
            .map(|i| LogRecord {
                unix_nanos: 1_000_000_000 + i as u64,
                fields: vec![Tag::new("message", "ééééé"), Tag::new("n", i)],
            })
            .collect();
        let mut record = record("op", tags, logs);
        record.logs.get_or_insert_with(Box::default).dropped = 3;
        let encoded = span(&record, &limits);
        assert_eq!(encoded.span.tags[0].key, "long");
        assert_eq!(
            encoded.span.tags[0].value,
            Some(Value::StringValue("ünï".into()))
        );
        assert_eq!(encoded.span.logs.len(), 2);
        let first = &encoded.span.logs[0];
        assert_eq!(first.timestamp.unwrap().to_unix_nanos(), 1_000_000_000);
        assert_eq!(first.fields[0].key, "mess");
        assert_eq!(first.fields[0].value, Some(Value::StringValue("éé".into())));
        assert_eq!(first.fields[1].value, Some(Value::IntValue(0)));
        // Three dropped while recording, two more cut here.
        assert_eq!(encoded.logs_dropped, 5);

        let encoded = span(
            &record,
            &Limits {
                drop_logs: true,
                ..limits
            },
        );
        assert!(encoded.span.logs.is_empty());
        assert_eq!(encoded.logs_dropped, 0);
    }
}
