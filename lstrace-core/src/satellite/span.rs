//! The spans the satellite received, of either protocol, as one plain type to query, print,
//! compare and write as JSON ([`ReceivedSpan`]).

use crate::protocol::lightstep::{
    key_value, KeyValue, LightStepRelationship, LightStepSpan, ReportRequest, Timestamp,
};
use crate::protocol::otlp::{
    any_value, ExportTraceServiceRequest, KeyValue as OtlpKeyValue, OtlpSpan, OtlpSpanKind,
    StatusCode,
};
use crate::record::Relationship;
use crate::reporter::protocol::otlp::wire::{
    ERROR_TAG, FOLLOWS_FROM, REF_TYPE_ATTRIBUTE, SPAN_KIND_TAG,
};
use crate::reporter::protocol::otlp::SERVICE_NAME;
use crate::reporter::Protocol;
use crate::SpanKind;
use serde_json::{json, Value};
use std::fmt;
use std::time::Duration;

/// A tag, attribute or log field value as the satellite received it, typed.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum FieldValue {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Double(f64),
    /// A boolean.
    Bool(bool),
    /// LightStep: a JSON text.
    Json(String),
    /// OTLP: bytes.
    Bytes(Vec<u8>),
    /// OTLP: a list of values.
    Array(Vec<FieldValue>),
    /// OTLP: a list of keys and values.
    Map(Vec<(String, FieldValue)>),
}

/// A reference from a span to another: its parent, or a span it follows from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpanReference {
    /// Whether the referenced span waits for this one (`ChildOf`) or not.
    pub relationship: Relationship,
    /// The referenced span's trace (for a LightStep span, the low 64 bits only).
    pub trace_id: u128,
    /// The referenced span.
    pub span_id: u64,
}

/// A log (OTLP: an event) on a span.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ReceivedLog {
    /// When it happened, in nanoseconds since the Unix epoch.
    pub unix_nanos: u64,
    /// Its fields, in the order received. An OTLP event's name comes first, as `event`.
    pub fields: Vec<(String, FieldValue)>,
}

/// A span the local satellite received, whichever protocol carried it: what
/// [`LocalSatellite::spans`](super::LocalSatellite::spans) returns, to find spans by name or
/// trace and assert on them without the protocols' messages.
///
/// Both protocols fill it alike, in the OpenTracing model lstrace records in: a span carries
/// its `span.kind` and `error` tags whichever protocol carried it (an OTLP span's kind and
/// ERROR status become those tags), and also as [`kind`](Self::kind) and
/// [`error`](Self::error). `Display` writes one readable line; [`ReceivedSpan::to_json`] a
/// JSON object.
///
/// ```
/// use lstrace_core::satellite::{FieldValue, LocalSatellite};
/// use lstrace_core::{init, span, Options, SpanKind};
/// use std::time::Duration;
///
/// let satellite = LocalSatellite::start()?;
/// let tracer = init(
///     Options::new("any-token")
///         .component_name("shop")
///         .collector_url(satellite.url()),
/// )?;
/// span("checkout").kind(SpanKind::Server).with_tag("items", 3).start().finish();
/// tracer.flush(Duration::from_secs(10));
///
/// let checkout = satellite.span("checkout").expect("received");
/// assert_eq!(checkout.service, "shop");
/// assert_eq!(checkout.kind, Some(SpanKind::Server));
/// assert_eq!(checkout.tag("items"), Some(&FieldValue::Int(3)));
/// assert!(checkout.to_string().starts_with("shop: checkout [items=3, span.kind=server]"));
/// assert!(checkout.to_json().contains(r#""name":"checkout""#));
/// # tracer.close(Duration::from_secs(10));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ReceivedSpan {
    /// The protocol that carried it.
    pub protocol: Protocol,
    /// The service that reported it: a LightStep report's component name, an OTLP
    /// resource's `service.name` (empty when there is none).
    pub service: String,
    /// The operation name.
    pub name: String,
    /// The trace. LightStep reports carry its low 64 bits only (see
    /// [`ReceivedSpan::in_trace`]).
    pub trace_id: u128,
    /// The span's id.
    pub span_id: u64,
    /// The parent's span id: a LightStep span's first reference's, an OTLP span's
    /// `parent_span_id` (its links are not parents).
    pub parent_id: Option<u64>,
    /// Its references, the parent first. An OTLP span's parent (FOLLOWS_FROM when a link to
    /// it says so) and its other links (as FOLLOWS_FROM).
    pub references: Vec<SpanReference>,
    /// When it started, in nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// How long it took (LightStep reports carry whole microseconds).
    pub duration: Duration,
    /// Its kind: the `span.kind` tag, or the OTLP kind; `None` for an internal span.
    pub kind: Option<SpanKind>,
    /// Whether it failed: the tag `error = true`, or an OTLP status of ERROR.
    pub error: bool,
    /// Its tags (OTLP: attributes), in the order received.
    pub tags: Vec<(String, FieldValue)>,
    /// Its logs (OTLP: events), in the order received.
    pub logs: Vec<ReceivedLog>,
    /// What the reporter said about itself: a LightStep report's reporter tags, an OTLP
    /// resource's attributes.
    pub resource: Vec<(String, FieldValue)>,
}

impl ReceivedSpan {
    /// The value of a tag, if the span has it.
    #[must_use]
    pub fn tag(&self, key: &str) -> Option<&FieldValue> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Whether the span belongs to the trace `trace_id` (of a LightStep span, whose report
    /// carries the low 64 bits only, those are compared).
    #[must_use]
    pub fn in_trace(&self, trace_id: crate::TraceId) -> bool {
        match self.protocol {
            Protocol::LightStep => self.trace_id == u128::from(trace_id.low()),
            Protocol::Otlp => self.trace_id == trace_id.to_u128(),
        }
    }

    /// The span as a JSON object: ids as hexadecimal text, the start as decimal text (exact
    /// beyond what a JSON number keeps), the duration in nanoseconds, and every value with its
    /// type:
    ///
    /// ```text
    /// {"protocol":"lightstep","service":"shop","name":"checkout",
    ///  "trace_id":"0000000000000000a1b2c3d4e5f60718","span_id":"1a2b3c4d5e6f7081",
    ///  "parent_id":null,"references":[],"start_unix_nanos":"1764650000000000000",
    ///  "duration_nanos":1000,"kind":"server","error":false,
    ///  "tags":[{"key":"items","type":"int","value":3}, ...],"logs":[],"resource":[...]}
    /// ```
    #[must_use]
    pub fn to_json(&self) -> String {
        self.json().to_string()
    }

    fn json(&self) -> Value {
        json!({
            "protocol": match self.protocol {
                Protocol::LightStep => "lightstep",
                Protocol::Otlp => "otlp",
            },
            "service": self.service,
            "name": self.name,
            "trace_id": format!("{:032x}", self.trace_id),
            "span_id": format!("{:016x}", self.span_id),
            "parent_id": self.parent_id.map(|id| format!("{id:016x}")),
            "references": self.references.iter().map(|r| json!({
                "relationship": relationship_name(r.relationship),
                "trace_id": format!("{:032x}", r.trace_id),
                "span_id": format!("{:016x}", r.span_id),
            })).collect::<Vec<_>>(),
            "start_unix_nanos": self.start_unix_nanos.to_string(),
            "duration_nanos": u64::try_from(self.duration.as_nanos()).unwrap_or(u64::MAX),
            "kind": self.kind.map(SpanKind::as_str),
            "error": self.error,
            "tags": fields_json(&self.tags),
            "logs": self.logs.iter().map(|log| json!({
                "unix_nanos": log.unix_nanos.to_string(),
                "fields": fields_json(&log.fields),
            })).collect::<Vec<_>>(),
            "resource": fields_json(&self.resource),
        })
    }

    /// A span of a LightStep report from `service`.
    pub(crate) fn from_lightstep(
        span: &LightStepSpan,
        service: &str,
        reporter_tags: &[KeyValue],
    ) -> Self {
        let context = span.span_context.as_ref();
        let tags = lightstep_fields(&span.tags);
        let references: Vec<SpanReference> = span
            .references
            .iter()
            .map(|r| {
                let context = r.span_context.as_ref();
                SpanReference {
                    relationship: match LightStepRelationship::try_from(r.relationship) {
                        Ok(LightStepRelationship::FollowsFrom) => Relationship::FollowsFrom,
                        _ => Relationship::ChildOf,
                    },
                    trace_id: context.map_or(0, |c| u128::from(c.trace_id)),
                    span_id: context.map_or(0, |c| c.span_id),
                }
            })
            .collect();
        ReceivedSpan {
            protocol: Protocol::LightStep,
            service: service.to_owned(),
            name: span.operation_name.clone(),
            trace_id: context.map_or(0, |c| u128::from(c.trace_id)),
            span_id: context.map_or(0, |c| c.span_id),
            parent_id: span
                .references
                .first()
                .and_then(|r| r.span_context.as_ref())
                .map(|c| c.span_id),
            references,
            start_unix_nanos: span.start_timestamp.map_or(0, Timestamp::to_unix_nanos),
            duration: Duration::from_micros(span.duration_micros),
            kind: kind_tag(&tags),
            error: tags
                .iter()
                .any(|(k, v)| k == ERROR_TAG && *v == FieldValue::Bool(true)),
            tags,
            logs: span
                .logs
                .iter()
                .map(|log| ReceivedLog {
                    unix_nanos: log.timestamp.map_or(0, Timestamp::to_unix_nanos),
                    fields: lightstep_fields(&log.fields),
                })
                .collect(),
            resource: lightstep_fields(reporter_tags),
        }
    }

    /// A span of an OTLP export from `service`, under a resource with these attributes.
    pub(crate) fn from_otlp(span: &OtlpSpan, service: &str, resource: &[OtlpKeyValue]) -> Self {
        let trace_id = otlp_id(&span.trace_id);
        let is_follows_link = |link: &crate::protocol::otlp::Link| {
            link.attributes.iter().any(|kv| {
                kv.key == REF_TYPE_ATTRIBUTE
                    && kv.value.as_ref().and_then(|v| v.value.as_ref())
                        == Some(&any_value::Value::StringValue(FOLLOWS_FROM.into()))
            })
        };
        let parent = Some(id(&span.parent_span_id)).filter(|&p| p != 0);
        let mut references: Vec<SpanReference> = parent
            .map(|span_id| SpanReference {
                relationship: if span
                    .links
                    .iter()
                    .any(|l| id(&l.span_id) == span_id && is_follows_link(l))
                {
                    Relationship::FollowsFrom
                } else {
                    Relationship::ChildOf
                },
                trace_id,
                span_id,
            })
            .into_iter()
            .collect();
        references.extend(
            span.links
                .iter()
                .filter(|l| !(Some(id(&l.span_id)) == parent && is_follows_link(l)))
                .map(|l| SpanReference {
                    relationship: Relationship::FollowsFrom,
                    trace_id: otlp_id(&l.trace_id),
                    span_id: id(&l.span_id),
                }),
        );
        let kind = match OtlpSpanKind::try_from(span.kind) {
            Ok(OtlpSpanKind::Server) => Some(SpanKind::Server),
            Ok(OtlpSpanKind::Client) => Some(SpanKind::Client),
            Ok(OtlpSpanKind::Producer) => Some(SpanKind::Producer),
            Ok(OtlpSpanKind::Consumer) => Some(SpanKind::Consumer),
            _ => None,
        };
        let error = span.status.as_ref().map(|s| s.code) == Some(StatusCode::Error as i32);
        let mut tags = otlp_fields(&span.attributes);
        if let Some(kind) = kind {
            tags.push((SPAN_KIND_TAG.into(), FieldValue::Str(kind.as_str().into())));
        }
        if error {
            tags.push((ERROR_TAG.into(), FieldValue::Bool(true)));
        }
        ReceivedSpan {
            protocol: Protocol::Otlp,
            service: service.to_owned(),
            name: span.name.clone(),
            trace_id,
            span_id: id(&span.span_id),
            parent_id: parent,
            references,
            start_unix_nanos: span.start_time_unix_nano,
            duration: Duration::from_nanos(
                span.end_time_unix_nano
                    .saturating_sub(span.start_time_unix_nano),
            ),
            kind,
            error,
            tags,
            logs: span
                .events
                .iter()
                .map(|event| ReceivedLog {
                    unix_nanos: event.time_unix_nano,
                    fields: std::iter::once(("event".into(), FieldValue::Str(event.name.clone())))
                        .chain(otlp_fields(&event.attributes))
                        .collect(),
                })
                .collect(),
            resource: otlp_fields(resource),
        }
    }
}

/// `name [tags] (duration, kind, error) trace=... span=... parent=...`, the tags sorted
/// by key, then one `- field=value, ...` per log on the same line (`; `-separated).
impl fmt::Display for ReceivedSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.service.is_empty() {
            write!(f, "{}: ", self.service)?;
        }
        f.write_str(&self.name)?;
        if !self.tags.is_empty() {
            let mut tags: Vec<_> = self.tags.iter().collect();
            tags.sort_by(|a, b| a.0.cmp(&b.0));
            f.write_str(" [")?;
            write_fields(f, tags.into_iter())?;
            f.write_str("]")?;
        }
        write!(f, " ({:?}", self.duration)?;
        if self.error {
            f.write_str(", failed")?;
        }
        write!(
            f,
            ") trace={:032x} span={:016x}",
            self.trace_id, self.span_id
        )?;
        for reference in &self.references {
            let relationship = relationship_name(reference.relationship);
            write!(f, " {relationship}={:016x}", reference.span_id)?;
        }
        for log in &self.logs {
            f.write_str(" | ")?;
            write_fields(f, log.fields.iter())?;
        }
        Ok(())
    }
}

/// `{key}={value}`, comma-separated.
fn write_fields<'a>(
    f: &mut fmt::Formatter<'_>,
    fields: impl Iterator<Item = &'a (String, FieldValue)>,
) -> fmt::Result {
    for (i, (key, value)) in fields.enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{key}={value}")?;
    }
    Ok(())
}

/// The value as text, as tags display: strings and JSON as they are, bytes in hexadecimal,
/// arrays as `[a, b]`, maps as `{k=v, ...}`.
impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Str(s) | FieldValue::Json(s) => f.write_str(s),
            FieldValue::Int(i) => write!(f, "{i}"),
            FieldValue::Double(x) => write!(f, "{x}"),
            FieldValue::Bool(b) => write!(f, "{b}"),
            FieldValue::Bytes(b) => write!(f, "{b:02x?}"),
            FieldValue::Array(values) => {
                f.write_str("[")?;
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{value}")?;
                }
                f.write_str("]")
            }
            FieldValue::Map(fields) => {
                f.write_str("{")?;
                write_fields(f, fields.iter())?;
                f.write_str("}")
            }
        }
    }
}

impl FieldValue {
    fn json(&self) -> Value {
        match self {
            FieldValue::Str(s) | FieldValue::Json(s) => json!(s),
            FieldValue::Int(i) => json!(i),
            // JSON has no NaN or infinities: those are written as text.
            FieldValue::Double(x) if x.is_finite() => json!(x),
            FieldValue::Double(x) => json!(x.to_string()),
            FieldValue::Bool(b) => json!(b),
            FieldValue::Bytes(b) => json!(b.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            FieldValue::Array(values) => {
                Value::Array(values.iter().map(FieldValue::json).collect())
            }
            FieldValue::Map(fields) => fields_json(fields),
        }
    }

    /// The type's name, as JSON shows it.
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            FieldValue::Str(_) => "string",
            FieldValue::Int(_) => "int",
            FieldValue::Double(_) => "double",
            FieldValue::Bool(_) => "bool",
            FieldValue::Json(_) => "json",
            FieldValue::Bytes(_) => "bytes",
            FieldValue::Array(_) => "array",
            FieldValue::Map(_) => "map",
        }
    }

    fn from_otlp(value: &any_value::Value) -> Self {
        match value {
            any_value::Value::StringValue(s) => FieldValue::Str(s.clone()),
            any_value::Value::BoolValue(b) => FieldValue::Bool(*b),
            any_value::Value::IntValue(i) => FieldValue::Int(*i),
            any_value::Value::DoubleValue(x) => FieldValue::Double(*x),
            any_value::Value::BytesValue(b) => FieldValue::Bytes(b.clone()),
            any_value::Value::ArrayValue(a) => FieldValue::Array(
                a.values
                    .iter()
                    .filter_map(|v| v.value.as_ref())
                    .map(FieldValue::from_otlp)
                    .collect(),
            ),
            any_value::Value::KvlistValue(l) => FieldValue::Map(otlp_fields(&l.values)),
        }
    }
}

fn fields_json(fields: &[(String, FieldValue)]) -> Value {
    Value::Array(
        fields
            .iter()
            .map(|(key, value)| json!({ "key": key, "type": value.type_name(), "value": value.json() }))
            .collect(),
    )
}

pub(super) fn relationship_name(relationship: Relationship) -> &'static str {
    match relationship {
        Relationship::ChildOf => "child_of",
        Relationship::FollowsFrom => "follows_from",
    }
}

/// LightStep tags or log fields, typed; a field without a value is an empty string.
fn lightstep_fields(fields: &[KeyValue]) -> Vec<(String, FieldValue)> {
    fields
        .iter()
        .map(|kv| {
            let value = match &kv.value {
                Some(key_value::Value::StringValue(s)) => FieldValue::Str(s.clone()),
                Some(key_value::Value::IntValue(i)) => FieldValue::Int(*i),
                Some(key_value::Value::DoubleValue(x)) => FieldValue::Double(*x),
                Some(key_value::Value::BoolValue(b)) => FieldValue::Bool(*b),
                Some(key_value::Value::JsonValue(s)) => FieldValue::Json(s.clone()),
                None => FieldValue::Str(String::new()),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

/// OTLP attributes, typed; an attribute without a value is an empty string.
fn otlp_fields(fields: &[OtlpKeyValue]) -> Vec<(String, FieldValue)> {
    fields
        .iter()
        .map(|kv| {
            let value = kv
                .value
                .as_ref()
                .and_then(|v| v.value.as_ref())
                .map_or(FieldValue::Str(String::new()), FieldValue::from_otlp);
            (kv.key.clone(), value)
        })
        .collect()
}

/// The kind a `span.kind` tag names, if it names one.
fn kind_tag(tags: &[(String, FieldValue)]) -> Option<SpanKind> {
    tags.iter()
        .find(|(k, _)| k == SPAN_KIND_TAG)
        .and_then(|(_, v)| match v {
            FieldValue::Str(s) => match s.as_str() {
                "server" => Some(SpanKind::Server),
                "client" => Some(SpanKind::Client),
                "producer" => Some(SpanKind::Producer),
                "consumer" => Some(SpanKind::Consumer),
                _ => None,
            },
            _ => None,
        })
}

/// The id in 8 (or 16: the low half) big-endian bytes; 0 for anything else.
fn id(bytes: &[u8]) -> u64 {
    match bytes.len() {
        8 => u64::from_be_bytes(bytes.try_into().unwrap_or_default()),
        16 => u64::from_be_bytes(bytes[8..].try_into().unwrap_or_default()),
        _ => 0,
    }
}

/// A 16-byte OTLP trace id (8 bytes: the low half); 0 for anything else.
fn otlp_id(bytes: &[u8]) -> u128 {
    match bytes.len() {
        16 => u128::from_be_bytes(bytes.try_into().unwrap_or_default()),
        _ => u128::from(id(bytes)),
    }
}

/// A resource's `service.name`, when it is a string.
fn service_name(attributes: &[OtlpKeyValue]) -> Option<&str> {
    attributes
        .iter()
        .find(|kv| kv.key == SERVICE_NAME)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(any_value::Value::StringValue(name)) => Some(name.as_str()),
            _ => None,
        })
}

/// Whether the spans made from a report carry its resource (its reporter's tags, its
/// resource's attributes). The web view shows none, and holds many spans of each report:
/// a copy per span would multiply what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Resource {
    Kept,
    Left,
}

/// The spans of a LightStep report, with its component name as their service.
pub(super) fn report_spans(
    request: &ReportRequest,
    resource: Resource,
) -> impl Iterator<Item = ReceivedSpan> + '_ {
    let service = super::component_name(request).unwrap_or_default();
    let reporter_tags = match (resource, &request.reporter) {
        (Resource::Kept, Some(reporter)) => &reporter.tags[..],
        _ => &[],
    };
    request
        .spans
        .iter()
        .map(move |span| ReceivedSpan::from_lightstep(span, service, reporter_tags))
}

/// The spans of an OTLP export, each with its resource's `service.name` as its service.
pub(super) fn export_spans(
    request: &ExportTraceServiceRequest,
    resource: Resource,
) -> impl Iterator<Item = ReceivedSpan> + '_ {
    request
        .resource_spans
        .iter()
        .flat_map(move |resource_spans| {
            let attributes = resource_spans
                .resource
                .as_ref()
                .map_or(&[][..], |r| &r.attributes[..]);
            let service = service_name(attributes).unwrap_or_default();
            let kept = match resource {
                Resource::Kept => attributes,
                Resource::Left => &[],
            };
            resource_spans
                .scope_spans
                .iter()
                .flat_map(|scope| scope.spans.iter())
                .map(move |span| ReceivedSpan::from_otlp(span, service, kept))
        })
}

/// The low 64 bits of a trace id: what LightStep reports carry, so that the trees and the
/// web view show a trace reported over both protocols as one.
pub(super) fn low_64(trace_id: u128) -> u64 {
    (trace_id & u128::from(u64::MAX)) as u64
}

impl From<&ReceivedSpan> for crate::testing::tree::TreeSpan {
    fn from(span: &ReceivedSpan) -> Self {
        let text = |fields: &[(String, FieldValue)]| -> Vec<(String, String)> {
            fields
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect()
        };
        crate::testing::tree::TreeSpan {
            // The trace id's low 64 bits and whole microseconds, what LightStep reports
            // carry: the same spans render the same whichever protocol carried them.
            trace_id: u128::from(low_64(span.trace_id)),
            span_id: span.span_id,
            parent_id: span.parent_id,
            name: span.name.clone(),
            start_unix_nanos: span.start_unix_nanos,
            duration: Duration::from_micros(
                u64::try_from(span.duration.as_micros()).unwrap_or(u64::MAX),
            ),
            tags: text(&span.tags),
            logs: span.logs.iter().map(|log| text(&log.fields)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::lightstep::{LightStepSpanContext, Log, Reference};
    use crate::protocol::otlp::{Link, OtlpEvent, Status};

    fn lightstep_kv(key: &str, value: key_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(value),
        }
    }

    /// The same span, as lstrace's two encoders write it.
    fn both() -> (ReceivedSpan, ReceivedSpan) {
        let context = |span_id| {
            Some(LightStepSpanContext {
                trace_id: 7,
                span_id,
                baggage: Default::default(),
            })
        };
        let lightstep = LightStepSpan {
            span_context: context(2),
            operation_name: "charge".into(),
            references: vec![Reference {
                relationship: LightStepRelationship::FollowsFrom as i32,
                span_context: context(1),
            }],
            start_timestamp: Some(Timestamp::from_unix_nanos(5_000)),
            duration_micros: 3,
            tags: vec![
                lightstep_kv("n", key_value::Value::IntValue(3)),
                lightstep_kv("span.kind", key_value::Value::StringValue("client".into())),
                lightstep_kv("error", key_value::Value::BoolValue(true)),
            ],
            logs: vec![Log {
                timestamp: Some(Timestamp::from_unix_nanos(6_000)),
                fields: vec![
                    lightstep_kv("event", key_value::Value::StringValue("error".into())),
                    lightstep_kv("message", key_value::Value::StringValue("boom".into())),
                ],
            }],
        };
        let otlp = OtlpSpan {
            trace_id: [[0xaa; 8], 7u64.to_be_bytes()].concat(),
            span_id: 2u64.to_be_bytes().to_vec(),
            parent_span_id: 1u64.to_be_bytes().to_vec(),
            name: "charge".into(),
            kind: OtlpSpanKind::Client as i32,
            start_time_unix_nano: 5_000,
            end_time_unix_nano: 8_000,
            attributes: vec![OtlpKeyValue::new("n", any_value::Value::IntValue(3))],
            events: vec![OtlpEvent {
                time_unix_nano: 6_000,
                name: "error".into(),
                attributes: vec![OtlpKeyValue::new(
                    "message",
                    any_value::Value::StringValue("boom".into()),
                )],
                dropped_attributes_count: 0,
            }],
            links: vec![Link {
                trace_id: [[0xaa; 8], 7u64.to_be_bytes()].concat(),
                span_id: 1u64.to_be_bytes().to_vec(),
                attributes: vec![OtlpKeyValue::new(
                    REF_TYPE_ATTRIBUTE,
                    any_value::Value::StringValue(FOLLOWS_FROM.into()),
                )],
                ..Link::default()
            }],
            status: Some(Status {
                message: "boom".into(),
                code: StatusCode::Error as i32,
            }),
            ..OtlpSpan::default()
        };
        let service = [OtlpKeyValue::new(
            "service.name",
            any_value::Value::StringValue("shop".into()),
        )];
        let reporter = [lightstep_kv(
            "service.name",
            key_value::Value::StringValue("shop".into()),
        )];
        (
            ReceivedSpan::from_lightstep(&lightstep, "shop", &reporter),
            ReceivedSpan::from_otlp(&otlp, "shop", &service),
        )
    }

    #[test]
    fn both_protocols_give_the_same_span() {
        let (lightstep, otlp) = both();
        assert_eq!(lightstep.kind, Some(SpanKind::Client));
        assert!(lightstep.error && otlp.error);
        assert_eq!(lightstep.parent_id, Some(1));
        assert_eq!(
            otlp.references,
            vec![SpanReference {
                relationship: Relationship::FollowsFrom,
                trace_id: otlp.trace_id,
                span_id: 1,
            }],
            "the link that marks the parent FOLLOWS_FROM is not a reference of its own"
        );
        assert!(lightstep.in_trace(crate::TraceId::from_u128(otlp.trace_id)));
        assert!(otlp.in_trace(crate::TraceId::from_u128(otlp.trace_id)));
        // Apart from the protocol and the trace id's high bits, they are equal.
        let sorted = |mut span: ReceivedSpan| {
            span.tags.sort_by(|a, b| a.0.cmp(&b.0));
            span.protocol = Protocol::LightStep;
            span.trace_id &= u128::from(u64::MAX);
            for reference in &mut span.references {
                reference.trace_id &= u128::from(u64::MAX);
            }
            span
        };
        assert_eq!(sorted(lightstep.clone()), sorted(otlp.clone()));
        assert_eq!(
            lightstep.to_string(),
            "shop: charge [error=true, n=3, span.kind=client] (3µs, failed) \
             trace=00000000000000000000000000000007 span=0000000000000002 \
             follows_from=0000000000000001 | event=error, message=boom"
        );
        assert_eq!(
            crate::testing::tree::render(
                [&lightstep, &otlp],
                crate::testing::tree::TreeStyle::default().with_logs(true)
            ),
            "charge [error=true, n=3, span.kind=client]\n  - event=error, message=boom\n\
             charge [error=true, n=3, span.kind=client]\n  - event=error, message=boom\n"
        );
    }

    #[test]
    fn parents_are_a_first_reference_or_an_otlp_parent_never_a_link() {
        let (lightstep, otlp) = both();
        let render = |spans: &[&ReceivedSpan]| {
            crate::testing::tree::render(
                spans.iter().copied(),
                crate::testing::tree::TreeStyle::default().with_durations(true),
            )
        };
        let mut parent = lightstep.clone();
        parent.span_id = 1;
        parent.name = "checkout".into();
        parent.parent_id = None;
        parent.references.clear();
        assert_eq!(
            render(&[&lightstep, &parent]),
            "checkout (3µs) [error=true, n=3, span.kind=client]\n  \
             charge (3µs) [error=true, n=3, span.kind=client]\n"
        );

        // A LightStep reference without a context names no parent.
        let mut orphan = LightStepSpan {
            references: vec![Reference::default()],
            ..LightStepSpan::default()
        };
        assert_eq!(
            ReceivedSpan::from_lightstep(&orphan, "", &[]).parent_id,
            None
        );
        orphan.references.clear();
        assert!(ReceivedSpan::from_lightstep(&orphan, "", &[])
            .references
            .is_empty());

        // An OTLP root with a link stays a root: the link is a reference only. Its duration,
        // in nanoseconds, is drawn in whole microseconds as a LightStep report carries it.
        let link = |span_id: u64| Link {
            trace_id: [[0xaa; 8], 7u64.to_be_bytes()].concat(),
            span_id: span_id.to_be_bytes().to_vec(),
            ..Link::default()
        };
        let root = OtlpSpan {
            span_id: 9u64.to_be_bytes().to_vec(),
            trace_id: [[0xaa; 8], 7u64.to_be_bytes()].concat(),
            name: "linked".into(),
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 4_500,
            links: vec![link(2)],
            ..OtlpSpan::default()
        };
        let root = ReceivedSpan::from_otlp(&root, "shop", &[]);
        assert_eq!(root.parent_id, None);
        assert_eq!(root.references[0].span_id, 2);
        assert_eq!(root.duration, Duration::from_nanos(3_500));
        assert_eq!(
            render(&[&root, &otlp]),
            "linked (3µs)\ncharge (3µs) [error=true, n=3, span.kind=client]\n"
        );
    }

    #[test]
    fn json_keeps_types_and_exact_ids() {
        let (_, otlp) = both();
        let json: Value = serde_json::from_str(&otlp.to_json()).unwrap();
        assert_eq!(json["protocol"], "otlp");
        assert_eq!(json["trace_id"], "aaaaaaaaaaaaaaaa0000000000000007");
        assert_eq!(json["parent_id"], "0000000000000001");
        assert_eq!(json["references"][0]["relationship"], "follows_from");
        assert_eq!(json["start_unix_nanos"], "5000");
        assert_eq!(json["duration_nanos"], 3000);
        assert_eq!(json["kind"], "client");
        assert_eq!(json["error"], true);
        assert_eq!(
            json["tags"][0],
            json!({ "key": "n", "type": "int", "value": 3 })
        );
        assert_eq!(json["logs"][0]["fields"][1]["value"], "boom");
        assert_eq!(json["resource"][0]["value"], "shop");
        let odd = FieldValue::Map(vec![
            ("nan".into(), FieldValue::Double(f64::NAN)),
            ("bytes".into(), FieldValue::Bytes(vec![1, 0xff])),
            (
                "list".into(),
                FieldValue::Array(vec![FieldValue::Int(1), FieldValue::Bool(false)]),
            ),
        ]);
        assert_eq!(
            odd.json(),
            json!([
                { "key": "nan", "type": "double", "value": "NaN" },
                { "key": "bytes", "type": "bytes", "value": "01ff" },
                { "key": "list", "type": "array", "value": [1, false] },
            ])
        );
        assert_eq!(
            odd.to_string(),
            "{nan=NaN, bytes=[01, ff], list=[1, false]}"
        );
    }
}
