//! The LightStep collector protocol (`package lightstep.collector`) and the LightStep binary
//! carrier (`package lightstep`), as prost messages with the exact field numbers of the
//! published schema. No `protoc` is needed to build them.
//!
//! A message named like a type of lstrace's own API carries the protocol's name
//! ([`LightStepSpan`], [`LightStepSpanContext`], [`LightStepRelationship`]), so that a module
//! importing both never has two `Span`s.
#![allow(missing_docs)] // Field docs are the schema's: see the module's source table.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// The timestamp of a number of nanoseconds since the Unix epoch.
    #[must_use]
    pub fn from_unix_nanos(nanos: u64) -> Self {
        Timestamp {
            seconds: i64::try_from(nanos / 1_000_000_000).unwrap_or(i64::MAX),
            nanos: i32::try_from(nanos % 1_000_000_000).unwrap_or(0),
        }
    }

    /// Nanoseconds since the Unix epoch (zero for times before it).
    #[must_use]
    pub fn to_unix_nanos(self) -> u64 {
        u64::try_from(self.seconds)
            .unwrap_or(0)
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::try_from(self.nanos).unwrap_or(0))
    }
}

/// `lightstep.collector.SpanContext`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LightStepSpanContext {
    #[prost(uint64, tag = "1")]
    pub trace_id: u64,
    #[prost(uint64, tag = "2")]
    pub span_id: u64,
    #[prost(map = "string, string", tag = "3")]
    pub baggage: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(oneof = "key_value::Value", tags = "2, 3, 4, 5, 6")]
    pub value: Option<key_value::Value>,
}

pub mod key_value {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(string, tag = "2")]
        StringValue(String),
        #[prost(int64, tag = "3")]
        IntValue(i64),
        #[prost(double, tag = "4")]
        DoubleValue(f64),
        #[prost(bool, tag = "5")]
        BoolValue(bool),
        #[prost(string, tag = "6")]
        JsonValue(String),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Log {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    #[prost(message, repeated, tag = "2")]
    pub fields: Vec<KeyValue>,
}

/// `lightstep.collector.Reference.Relationship`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum LightStepRelationship {
    ChildOf = 0,
    FollowsFrom = 1,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Reference {
    #[prost(enumeration = "LightStepRelationship", tag = "1")]
    pub relationship: i32,
    #[prost(message, optional, tag = "2")]
    pub span_context: Option<LightStepSpanContext>,
}

/// `lightstep.collector.Span`: a finished span as a report carries it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LightStepSpan {
    #[prost(message, optional, tag = "1")]
    pub span_context: Option<LightStepSpanContext>,
    #[prost(string, tag = "2")]
    pub operation_name: String,
    #[prost(message, repeated, tag = "3")]
    pub references: Vec<Reference>,
    #[prost(message, optional, tag = "4")]
    pub start_timestamp: Option<Timestamp>,
    #[prost(uint64, tag = "5")]
    pub duration_micros: u64,
    #[prost(message, repeated, tag = "6")]
    pub tags: Vec<KeyValue>,
    #[prost(message, repeated, tag = "7")]
    pub logs: Vec<Log>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Reporter {
    #[prost(uint64, tag = "1")]
    pub reporter_id: u64,
    #[prost(message, repeated, tag = "4")]
    pub tags: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricsSample {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(oneof = "metrics_sample::Value", tags = "2, 3")]
    pub value: Option<metrics_sample::Value>,
}

pub mod metrics_sample {
    #[derive(Clone, Copy, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(int64, tag = "2")]
        IntValue(i64),
        #[prost(double, tag = "3")]
        DoubleValue(f64),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct InternalMetrics {
    #[prost(message, optional, tag = "1")]
    pub start_timestamp: Option<Timestamp>,
    #[prost(uint64, tag = "2")]
    pub duration_micros: u64,
    #[prost(message, repeated, tag = "3")]
    pub logs: Vec<Log>,
    #[prost(message, repeated, tag = "4")]
    pub counts: Vec<MetricsSample>,
    #[prost(message, repeated, tag = "5")]
    pub gauges: Vec<MetricsSample>,
}

/// Holds the access token: its `Debug` output never shows it.
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
pub struct Auth {
    #[prost(string, tag = "1")]
    pub access_token: String,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("access_token", &"<redacted>")
            .finish()
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReportRequest {
    #[prost(message, optional, tag = "1")]
    pub reporter: Option<Reporter>,
    #[prost(message, optional, tag = "2")]
    pub auth: Option<Auth>,
    #[prost(message, repeated, tag = "3")]
    pub spans: Vec<LightStepSpan>,
    #[prost(int64, tag = "5")]
    pub timestamp_offset_micros: i64,
    #[prost(message, optional, tag = "6")]
    pub internal_metrics: Option<InternalMetrics>,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Command {
    #[prost(bool, tag = "1")]
    pub disable: bool,
    #[prost(bool, tag = "2")]
    pub dev_mode: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReportResponse {
    #[prost(message, repeated, tag = "1")]
    pub commands: Vec<Command>,
    #[prost(message, optional, tag = "2")]
    pub receive_timestamp: Option<Timestamp>,
    #[prost(message, optional, tag = "3")]
    pub transmit_timestamp: Option<Timestamp>,
    #[prost(string, repeated, tag = "4")]
    pub errors: Vec<String>,
    #[prost(string, repeated, tag = "5")]
    pub warnings: Vec<String>,
    #[prost(string, repeated, tag = "6")]
    pub infos: Vec<String>,
}

/// `lightstep.BasicTracerCarrier`, inside the binary carrier. Its baggage is ordered by key,
/// so that one context always encodes to the same carrier.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BasicTracerCarrier {
    #[prost(fixed64, tag = "1")]
    pub trace_id: u64,
    #[prost(fixed64, tag = "2")]
    pub span_id: u64,
    #[prost(bool, tag = "3")]
    pub sampled: bool,
    #[prost(btree_map = "string, string", tag = "4")]
    pub baggage_items: BTreeMap<String, String>,
}

/// `lightstep.BinaryCarrier`: the LightStep binary propagation format (and Envoy's
/// `x-ot-span-context` header, base64-encoded).
#[derive(Clone, PartialEq, prost::Message)]
pub struct BinaryCarrier {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub deprecated_text_ctx: Vec<Vec<u8>>,
    #[prost(message, optional, tag = "2")]
    pub basic_ctx: Option<BasicTracerCarrier>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn field_numbers_match_the_schema() {
        // Tags on the wire are (field_number << 3) | wire_type.
        let request = ReportRequest {
            timestamp_offset_micros: 1,
            internal_metrics: Some(InternalMetrics::default()),
            ..Default::default()
        };
        assert_eq!(request.encode_to_vec(), [5 << 3, 1, (6 << 3) | 2, 0]);
        let kv = KeyValue {
            key: "k".into(),
            value: Some(key_value::Value::BoolValue(true)),
        };
        assert_eq!(kv.encode_to_vec(), [(1 << 3) | 2, 1, b'k', 5 << 3, 1]);
        let reporter = Reporter {
            reporter_id: 1,
            tags: vec![KeyValue::default()],
        };
        assert_eq!(reporter.encode_to_vec(), [1 << 3, 1, (4 << 3) | 2, 0]);
        let carrier = BasicTracerCarrier {
            trace_id: 1,
            ..Default::default()
        };
        assert_eq!(
            carrier.encode_to_vec(),
            [(1 << 3) | 1, 1, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn auth_debug_hides_the_token() {
        let request = ReportRequest {
            auth: Some(Auth {
                access_token: "s3cr3t".into(),
            }),
            ..Default::default()
        };
        let shown = format!("{request:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn timestamps_round_trip() {
        let t = Timestamp::from_unix_nanos(1_700_000_000_123_456_789);
        assert_eq!((t.seconds, t.nanos), (1_700_000_000, 123_456_789));
        assert_eq!(t.to_unix_nanos(), 1_700_000_000_123_456_789);
    }
}
