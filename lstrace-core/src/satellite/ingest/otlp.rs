//! The same walk for OTLP exports: an `ExportTraceServiceRequest` judged against its schema
//! without being built, counting its spans and adding up what decoding it would hold, so
//! that an export that would hold more than the limit decoded is refused before prost builds
//! it, and a valid one is answered without being decoded: its spans are decoded when someone
//! asks for them, as a LightStep report's are.

use super::{Refusal, Refused, Repeated, Walk, RECURSION_LIMIT};
use crate::protocol::otlp::{
    AnyValue, ExportTraceServiceRequest, KeyValue, Link, OtlpEvent, OtlpSpan, ResourceSpans,
    ScopeSpans,
};
use prost::Message;

/// An export read on arrival, without decoding it.
#[derive(Debug, PartialEq, Eq)]
pub(in crate::satellite) struct WalkedExport {
    /// How many spans it carries.
    pub(in crate::satellite) spans: usize,
    /// The memory it holds once decoded (as the walk works it out).
    pub(in crate::satellite) decoded_bytes: usize,
}

/// Reads an export on arrival: its span count and what it would hold decoded, or why it is
/// not taken (prost's error, or more than `max_decoded_bytes` decoded). What it takes,
/// [`decode_otlp`] decodes.
pub(in crate::satellite) fn ingest_otlp(
    body: &[u8],
    max_decoded_bytes: usize,
) -> Result<WalkedExport, Refusal> {
    let walked = Walk::body(body, max_decoded_bytes, Walk::export)?;
    let spans = match walked.spans {
        Some(spans) => spans,
        // prost decides, and refuses it no further than the walk went, which held no more
        // than the limit (the tests hold the walk to that).
        None => ExportTraceServiceRequest::decode(body)
            .map_err(Refusal::Invalid)?
            .spans()
            .count(),
    };
    Ok(WalkedExport {
        spans,
        decoded_bytes: walked.decoded_bytes,
    })
}

/// Decodes a body that [`ingest_otlp`] took.
pub(in crate::satellite) fn decode_otlp(body: &[u8]) -> ExportTraceServiceRequest {
    // `ingest_otlp` took it, so prost does too; an empty export would only hide a bug that
    // the tests of this module exist to catch.
    ExportTraceServiceRequest::decode(body).unwrap_or_default()
}

impl Walk {
    /// `ExportTraceServiceRequest` (its spans are counted in `spans`).
    fn export(&mut self, mut body: &[u8]) -> Result<(), Refused> {
        let mut resource_spans = [Repeated::vec::<ResourceSpans>()];
        self.fields(
            &mut body,
            RECURSION_LIMIT,
            &mut resource_spans,
            |walk, [resource_spans], field| match field.tag {
                1 => walk.element(field, Self::resource_spans, resource_spans),
                _ => field.skip(),
            },
        )
    }

    /// `ResourceSpans`.
    fn resource_spans(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        let mut scope_spans = [Repeated::vec::<ScopeSpans>()];
        self.fields(
            buf,
            depth,
            &mut scope_spans,
            |walk, [scope_spans], field| match field.tag {
                1 => walk.message(field, Self::resource),
                2 => walk.element(field, Self::scope_spans, scope_spans),
                3 => walk.string(field),
                _ => field.skip(),
            },
        )
    }

    /// `Resource`.
    fn resource(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        let mut attributes = [Repeated::vec::<KeyValue>()];
        self.fields(
            buf,
            depth,
            &mut attributes,
            |walk, [attributes], field| match field.tag {
                1 => walk.element(field, Self::otlp_key_value, attributes),
                2 => field.varint(),
                _ => field.skip(),
            },
        )
    }

    /// `ScopeSpans`.
    fn scope_spans(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        let mut spans = [Repeated::vec::<OtlpSpan>()];
        self.fields(buf, depth, &mut spans, |walk, [spans], field| {
            match field.tag {
                1 => walk.message(field, Self::scope),
                2 => walk.element(field, Self::otlp_span, spans),
                3 => walk.string(field),
                _ => field.skip(),
            }
        })?;
        self.spans += spans[0].count;
        Ok(())
    }

    /// `InstrumentationScope`.
    fn scope(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        let mut attributes = [Repeated::vec::<KeyValue>()];
        self.fields(
            buf,
            depth,
            &mut attributes,
            |walk, [attributes], field| match field.tag {
                1 | 2 => walk.string(field),
                3 => walk.element(field, Self::otlp_key_value, attributes),
                4 => field.varint(),
                _ => field.skip(),
            },
        )
    }

    /// `OtlpSpan`.
    fn otlp_span(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        let mut repeated = [
            Repeated::vec::<KeyValue>(),
            Repeated::vec::<OtlpEvent>(),
            Repeated::vec::<Link>(),
        ];
        self.fields(
            buf,
            depth,
            &mut repeated,
            |walk, [attributes, events, links], field| match field.tag {
                1 | 2 | 4 => walk.bytes(field),
                3 | 5 => walk.string(field),
                6 | 10 | 12 | 14 => field.varint(),
                7 | 8 => field.fixed64(),
                9 => walk.element(field, Self::otlp_key_value, attributes),
                11 => walk.element(field, Self::event, events),
                13 => walk.element(field, Self::link, links),
                15 => walk.message(field, Self::status),
                16 => field.fixed32(),
                _ => field.skip(),
            },
        )
    }

    /// `Span.Event`.
    fn event(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        let mut attributes = [Repeated::vec::<KeyValue>()];
        self.fields(
            buf,
            depth,
            &mut attributes,
            |walk, [attributes], field| match field.tag {
                1 => field.fixed64(),
                2 => walk.string(field),
                3 => walk.element(field, Self::otlp_key_value, attributes),
                4 => field.varint(),
                _ => field.skip(),
            },
        )
    }

    /// `Span.Link`.
    fn link(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        let mut attributes = [Repeated::vec::<KeyValue>()];
        self.fields(
            buf,
            depth,
            &mut attributes,
            |walk, [attributes], field| match field.tag {
                1 | 2 => walk.bytes(field),
                3 => walk.string(field),
                4 => walk.element(field, Self::otlp_key_value, attributes),
                5 => field.varint(),
                6 => field.fixed32(),
                _ => field.skip(),
            },
        )
    }

    /// `Status`.
    fn status(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        self.fields(buf, depth, &mut [], |walk, _, field| match field.tag {
            2 => walk.string(field),
            3 => field.varint(),
            _ => field.skip(),
        })
    }

    /// `KeyValue`.
    fn otlp_key_value(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        self.fields(buf, depth, &mut [], |walk, _, field| match field.tag {
            1 => walk.string(field),
            2 => walk.message(field, Self::any_value),
            _ => field.skip(),
        })
    }

    /// `AnyValue`: a oneof, arrays and lists nesting as deep as prost lets them.
    fn any_value(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        self.fields(buf, depth, &mut [], |walk, _, field| match field.tag {
            1 => walk.string(field),
            2 | 3 => field.varint(),
            4 => field.fixed64(),
            5 => walk.message(field, Self::array_value),
            6 => walk.message(field, Self::key_value_list),
            7 => walk.bytes(field),
            _ => field.skip(),
        })
    }

    /// `ArrayValue`.
    fn array_value(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        let mut values = [Repeated::vec::<AnyValue>()];
        self.fields(
            buf,
            depth,
            &mut values,
            |walk, [values], field| match field.tag {
                1 => walk.element(field, Self::any_value, values),
                _ => field.skip(),
            },
        )
    }

    /// `KeyValueList`.
    fn key_value_list(&mut self, buf: &mut &[u8], depth: u32) -> Result<(), Refused> {
        let mut values = [Repeated::vec::<KeyValue>()];
        self.fields(
            buf,
            depth,
            &mut values,
            |walk, [values], field| match field.tag {
                1 => walk.element(field, Self::otlp_key_value, values),
                _ => field.skip(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{
        any_fields, counting, field, judged_damaged, judged_whole_and_cut, nested_groups,
        walk_says_what_decoding_holds, walked_spans,
    };
    use super::*;
    use crate::protocol::otlp::{
        any_value::Value, ArrayValue, InstrumentationScope, KeyValueList, Resource, Status,
    };
    use proptest::prelude::*;

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue::new(key, value)
    }

    /// An export with every field of every message set, values of every kind, nested.
    fn export() -> ExportTraceServiceRequest {
        let attributes = || {
            vec![
                kv("s", Value::StringValue("text".into())),
                kv("b", Value::BoolValue(true)),
                kv("i", Value::IntValue(-3)),
                kv("f", Value::DoubleValue(1.5)),
                kv("bytes", Value::BytesValue(vec![1, 2, 3])),
                kv(
                    "array",
                    Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue {
                            value: Some(Value::ArrayValue(ArrayValue {
                                values: vec![AnyValue {
                                    value: Some(Value::IntValue(1)),
                                }],
                            })),
                        }],
                    }),
                ),
                kv(
                    "list",
                    Value::KvlistValue(KeyValueList {
                        values: vec![kv("inner", Value::StringValue("x".into()))],
                    }),
                ),
            ]
        };
        let span = |id: u8| OtlpSpan {
            trace_id: vec![7; 16],
            span_id: vec![id; 8],
            trace_state: "k=v".into(),
            parent_span_id: vec![1; 8],
            name: format!("op {id}"),
            kind: 2,
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            attributes: attributes(),
            dropped_attributes_count: 1,
            events: vec![OtlpEvent {
                time_unix_nano: 3,
                name: "error".into(),
                attributes: attributes(),
                dropped_attributes_count: 2,
            }],
            dropped_events_count: 3,
            links: vec![Link {
                trace_id: vec![7; 16],
                span_id: vec![1; 8],
                trace_state: "k=v".into(),
                attributes: attributes(),
                dropped_attributes_count: 4,
                flags: 1,
            }],
            dropped_links_count: 5,
            status: Some(Status {
                message: "boom".into(),
                code: 2,
            }),
            flags: 0x101,
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: attributes(),
                    dropped_attributes_count: 6,
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "lstrace".into(),
                        version: "0.1.0".into(),
                        attributes: attributes(),
                        dropped_attributes_count: 7,
                    }),
                    spans: vec![span(2), span(3), span(4)],
                    schema_url: "https://opentelemetry.io/schemas/1.0".into(),
                }],
                schema_url: "https://opentelemetry.io/schemas/1.0".into(),
            }],
        }
    }

    /// The walk judges `body` as prost does, and `ingest_otlp` answers what prost answers.
    fn agrees_with_prost(body: &[u8]) {
        let walked = walked_spans(body, Walk::export);
        let decoded = ExportTraceServiceRequest::decode(body);
        assert_eq!(
            walked.is_some(),
            decoded.is_ok(),
            "{body:x?}: the walk says {walked:?}, prost {decoded:?}"
        );
        match (ingest_otlp(body, usize::MAX), decoded) {
            (Ok(ours), Ok(theirs)) => {
                assert_eq!(ours.spans, theirs.spans().count(), "{body:x?}");
                // Compared encoded: a damaged double may be a NaN, unequal to itself.
                assert_eq!(decode_otlp(body).encode_to_vec(), theirs.encode_to_vec());
            }
            (Err(Refusal::Invalid(ours)), Err(theirs)) => assert_eq!(ours, theirs),
            (ours, theirs) => panic!("{body:x?}: ingest says {ours:?}, prost {theirs:?}"),
        }
    }

    /// Where a field is added to a valid export: the field numbers down to the message.
    const LEVELS: [&[u64]; 17] = [
        &[],
        &[1],
        &[1, 1],
        &[1, 1, 1],
        &[1, 2],
        &[1, 2, 1],
        &[1, 2, 1, 3],
        &[1, 2, 2],
        &[1, 2, 2, 9],
        &[1, 2, 2, 9, 2],
        &[1, 2, 2, 9, 2, 5],
        &[1, 2, 2, 9, 2, 5, 1],
        &[1, 2, 2, 9, 2, 6],
        &[1, 2, 2, 11],
        &[1, 2, 2, 11, 3],
        &[1, 2, 2, 13],
        &[1, 2, 2, 15],
    ];

    /// A valid export with one more message at `path`, which holds `extra` after its own
    /// fields (a repeated message gets one more element; a singular one merges).
    fn with_extra(path: &[u64], extra: &[u8]) -> Vec<u8> {
        let mut body = export().encode_to_vec();
        let added = path
            .iter()
            .rev()
            .fold(extra.to_vec(), |content, &tag| field(tag, &content));
        body.extend_from_slice(&added);
        body
    }

    #[test]
    fn an_export_is_counted_on_arrival_and_decoded_whole_later() {
        let body = export().encode_to_vec();
        let walked = ingest_otlp(&body, usize::MAX).unwrap();
        assert_eq!(walked.spans, export().spans().count());
        assert!(walked.spans > 1);
        assert_eq!(decode_otlp(&body), export());
        agrees_with_prost(&body);
        for body in [
            &b"<html><body>502 Bad Gateway</body></html>"[..],
            b"\xff\xff\xff garbage",
            b"\x0a\x05ab",
        ] {
            assert!(matches!(
                ingest_otlp(body, usize::MAX),
                Err(Refusal::Invalid(_))
            ));
            agrees_with_prost(body);
        }
        // A span name that is not UTF-8, and a flags field cut short.
        for bad in [&b"\x2a\x02\xc3\x28"[..], b"\x85\x01\x01\x00"] {
            agrees_with_prost(&with_extra(&[1, 2, 2], bad));
        }
    }

    #[test]
    fn reading_an_export_on_arrival_builds_nothing() {
        let body = export().encode_to_vec();
        let before = counting::live();
        let walked = ingest_otlp(&body, usize::MAX).unwrap();
        // What the satellite holds until someone asks for the spans: the body alone.
        assert_eq!(counting::live() - before, 0, "{walked:?}");
        let decoded = decode_otlp(&body);
        assert!(counting::live() - before > 0);
        assert_eq!(decoded.spans().count(), walked.spans);
    }

    #[test]
    fn groups_nest_as_deep_as_prost_lets_them_at_every_level() {
        for depth in [1, 90, 94, 95, 96, 97, 98, 99, 100, 101] {
            for path in LEVELS {
                agrees_with_prost(&with_extra(path, &nested_groups(depth)));
            }
        }
    }

    #[test]
    fn values_nest_as_deep_as_prost_lets_them() {
        for depth in [1, 80, 90, 91, 92, 93, 94, 95, 96, 97, 98, 100, 120] {
            // `depth` arrays, one inside the other.
            let value =
                (0..depth).fold(b"\x18\x01".to_vec(), |inner, _| field(5, &field(1, &inner)));
            let attribute = field(2, &value);
            agrees_with_prost(&with_extra(&[1, 2, 2, 9], &attribute));
        }
    }

    #[test]
    fn decoding_holds_no_more_than_the_walk_says() {
        walk_says_what_decoding_holds::<ExportTraceServiceRequest>(
            &export().encode_to_vec(),
            Walk::export,
        );
    }

    #[test]
    fn exports_that_would_hold_too_much_decoded_are_refused() {
        let limit = 64 << 20;
        let scope = |spans: &[u8]| field(1, &field(2, spans));
        // 2 M empty spans, 2 M empty attributes in one span, 2 M empty array values, and
        // each of them with a broken field at the end (prost would refuse it, but only after
        // building everything before it).
        let bombs = [
            scope(&b"\x12\x00".repeat(2 << 20)),
            scope(&field(2, &b"\x4a\x00".repeat(2 << 20))),
            scope(&field(
                2,
                &field(9, &field(2, &field(5, &b"\x0a\x00".repeat(2 << 20)))),
            )),
        ];
        for bomb in &bombs {
            for body in [bomb.clone(), [&bomb[..], b"\x0a\x05ab"].concat()] {
                match ingest_otlp(&body, limit) {
                    Err(Refusal::TooLarge {
                        decoded_bytes,
                        limit: refused_at,
                    }) => assert!(decoded_bytes > limit && refused_at == limit),
                    other => panic!("{other:?}"),
                }
            }
        }
        // Under the limit, the same export is taken.
        let body = scope(&b"\x12\x00".repeat(1000));
        assert_eq!(ingest_otlp(&body, limit).unwrap().spans, 1000);
        walk_says_what_decoding_holds::<ExportTraceServiceRequest>(&body, Walk::export);
    }

    /// An export of any shape the OTLP exporters send, with any text and number of items.
    fn any_export() -> impl Strategy<Value = ExportTraceServiceRequest> {
        let leaf = prop_oneof![
            "[ -~]{0,20}".prop_map(Value::StringValue),
            any::<i64>().prop_map(Value::IntValue),
            any::<f64>().prop_map(Value::DoubleValue),
            any::<bool>().prop_map(Value::BoolValue),
            prop::collection::vec(any::<u8>(), 0..20).prop_map(Value::BytesValue),
        ];
        let value = leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(|values| {
                    Value::ArrayValue(ArrayValue {
                        values: values
                            .into_iter()
                            .map(|v| AnyValue { value: Some(v) })
                            .collect(),
                    })
                }),
                prop::collection::vec(("[a-z]{0,6}", inner), 0..4).prop_map(|values| {
                    Value::KvlistValue(KeyValueList {
                        values: values.into_iter().map(|(k, v)| kv(&k, v)).collect(),
                    })
                }),
            ]
        });
        let kv = ("[a-z.]{0,12}", value).prop_map(|(key, value)| kv(&key, value));
        let event = ("[a-z]{0,8}", prop::collection::vec(kv.clone(), 0..4)).prop_map(
            |(name, attributes)| OtlpEvent {
                time_unix_nano: 1,
                name,
                attributes,
                dropped_attributes_count: 0,
            },
        );
        let span = (
            prop::collection::vec(any::<u8>(), 0..17),
            "[a-z ]{0,30}",
            prop::collection::vec(kv.clone(), 0..12),
            prop::collection::vec(event, 0..4),
            prop::collection::vec(prop::collection::vec(kv.clone(), 0..3), 0..3),
        )
            .prop_map(|(trace_id, name, attributes, events, links)| OtlpSpan {
                trace_id,
                name,
                attributes,
                events,
                links: links
                    .into_iter()
                    .map(|attributes| Link {
                        attributes,
                        ..Link::default()
                    })
                    .collect(),
                ..export().resource_spans[0].scope_spans[0].spans[0].clone()
            });
        (
            prop::collection::vec(span, 0..16),
            prop::collection::vec(kv, 0..6),
        )
            .prop_map(|(spans, attributes)| {
                let mut export = export();
                let resource_spans = &mut export.resource_spans[0];
                resource_spans.resource = Some(Resource {
                    attributes,
                    dropped_attributes_count: 0,
                });
                resource_spans.scope_spans[0].spans = spans;
                export
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_are_judged_as_prost_judges_them(
            body in proptest::collection::vec(any::<u8>(), 0..200)
        ) {
            agrees_with_prost(&body);
        }

        #[test]
        fn damaged_exports_are_judged_as_prost_judges_them(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            judged_damaged(export().encode_to_vec(), flips, cut, agrees_with_prost);
        }

        #[test]
        fn added_fields_are_judged_as_prost_judges_them(
            path in prop::sample::select(LEVELS.to_vec()),
            extra in any_fields(),
            cut in any::<prop::sample::Index>(),
        ) {
            judged_whole_and_cut(with_extra(path, &extra), cut, agrees_with_prost);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn decoding_any_export_holds_no_more_than_the_walk_says(export in any_export()) {
            let body = export.encode_to_vec();
            agrees_with_prost(&body);
            walk_says_what_decoding_holds::<ExportTraceServiceRequest>(&body, Walk::export);
        }
    }
}
