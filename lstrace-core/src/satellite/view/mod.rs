//! The satellite's web view: the page (HTML, CSS and a little JavaScript, embedded) and the
//! JSON API it reads.
//!
//! | request | answer |
//! |---|---|
//! | `GET /`, `GET /trace/{trace_id}` | the page: the list of traces, or one trace's waterfall |
//! | `GET /api/traces?service=&operation=&errors=true&min_duration_ms=&limit=` | the traces that match, most recent start first |
//! | `GET /api/traces/{trace_id}` | one trace, its spans in waterfall order (`?summary=true`: without them) |
//!
//! Span text is the reporters', so untrusted: the page puts it in the document as text only,
//! and a Content-Security-Policy allows no script but the page's own.

use super::lock;
use super::server::bytes;
use super::span::{low_64, relationship_name, FieldValue};
use super::store::{Assembled, Filter, TraceStore, TraceSummary};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde_json::{json, Value};
use std::sync::Mutex;

const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const STYLE_CSS: &str = include_str!("style.css");

/// Only the page's own files; its requests go to this server only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'";

/// How many traces a listing shows unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 200;

/// The answer to a request for the view, or `None` when the path is not the view's.
pub(super) fn answer(
    method: &Method,
    path: &str,
    query: Option<&str>,
    store: &Mutex<TraceStore>,
) -> Option<Response<Full<Bytes>>> {
    let route = route(path)?;
    if method != Method::GET && method != Method::HEAD {
        let mut response = json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({ "error": format!("{path} takes GET only") }),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Some(response);
    }
    Some(match route {
        Route::Page => page(INDEX_HTML, "text/html; charset=utf-8"),
        Route::Script => page(APP_JS, "text/javascript; charset=utf-8"),
        Route::Style => page(STYLE_CSS, "text/css; charset=utf-8"),
        Route::Traces => match parse_filter(query.unwrap_or("")) {
            Ok(filter) => json_response(StatusCode::OK, &list_json(&lock(store), &filter)),
            Err(error) => json_response(StatusCode::BAD_REQUEST, &json!({ "error": error })),
        },
        Route::Trace(id) => match parse_trace_id(id) {
            Some(trace_id) => {
                let store = lock(store);
                let found = if summary_only(query.unwrap_or("")) {
                    store.summary(trace_id).map(|s| summary_json(&s))
                } else {
                    store.assemble(trace_id).map(|trace| trace_json(&trace))
                };
                match found {
                    Some(trace) => json_response(StatusCode::OK, &trace),
                    None => json_response(
                        StatusCode::NOT_FOUND,
                        &json!({
                            "error": format!(
                                "no trace {trace_id:016x} here: not received, or evicted"
                            )
                        }),
                    ),
                }
            }
            None => json_response(
                StatusCode::BAD_REQUEST,
                &json!({ "error": "a trace id is 1 to 32 hexadecimal digits" }),
            ),
        },
    })
}

enum Route<'a> {
    Page,
    Script,
    Style,
    Traces,
    Trace(&'a str),
}

fn route(path: &str) -> Option<Route<'_>> {
    match path {
        "/" => Some(Route::Page),
        "/app.js" => Some(Route::Script),
        "/style.css" => Some(Route::Style),
        "/api/traces" | "/api/traces/" => Some(Route::Traces),
        _ => {
            if let Some(id) = path.strip_prefix("/api/traces/") {
                Some(Route::Trace(id))
            } else if path.starts_with("/trace/") {
                Some(Route::Page)
            } else {
                None
            }
        }
    }
}

/// A trace id as the page writes it: hexadecimal, up to 32 digits, of which the store keys
/// on the low 64 bits.
fn parse_trace_id(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let low = &text[text.len().saturating_sub(16)..];
    u64::from_str_radix(low, 16).ok()
}

fn parse_filter(query: &str) -> Result<Filter, String> {
    let mut filter = Filter {
        limit: DEFAULT_LIMIT,
        ..Filter::default()
    };
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let nonempty = || Some(value.to_string()).filter(|v| !v.is_empty());
        match &*key {
            "service" => filter.service = nonempty(),
            "operation" => filter.operation = nonempty(),
            "errors" => {
                filter.errors_only = match &*value {
                    "true" | "1" | "on" => true,
                    "false" | "0" | "" => false,
                    other => return Err(format!("errors: {other:?} is not true or false")),
                }
            }
            "min_duration_ms" if value.is_empty() => filter.min_duration_nanos = 0,
            "min_duration_ms" => {
                let ms: f64 = value
                    .parse()
                    .ok()
                    .filter(|ms: &f64| ms.is_finite() && *ms >= 0.0)
                    .ok_or_else(|| {
                        format!("min_duration_ms: {value:?} is not a number of milliseconds")
                    })?;
                // Saturates for absurdly large values, as intended.
                filter.min_duration_nanos = (ms * 1e6) as u64;
            }
            "limit" => {
                filter.limit = value
                    .parse()
                    .map_err(|_| format!("limit: {value:?} is not a whole number"))?;
            }
            // Unknown parameters are ignored, as browsers and proxies may add some.
            _ => {}
        }
    }
    Ok(filter)
}

/// `?summary=true`: the trace's summary without its spans (what the page polls).
fn summary_only(query: &str) -> bool {
    form_urlencoded::parse(query.as_bytes()).any(|(key, value)| key == "summary" && value == "true")
}

fn hex(id: u64) -> String {
    format!("{id:016x}")
}

fn list_json(store: &TraceStore, filter: &Filter) -> Value {
    let listing = store.list(filter);
    let stats = store.stats();
    let limits = store.limits();
    json!({
        "version": store.version(),
        "limits": { "max_traces": limits.max_traces, "max_spans": limits.max_spans },
        "stored": { "traces": stats.traces, "spans": stats.spans },
        "evicted": { "traces": stats.evicted_traces, "spans": stats.evicted_spans },
        "services": listing.services,
        "operations": listing.operations,
        "matched": listing.matched,
        "traces": listing.traces.iter().map(summary_json).collect::<Vec<_>>(),
    })
}

fn summary_json(summary: &TraceSummary) -> Value {
    json!({
        "trace_id": hex(summary.trace_id),
        "root_operation": summary.root_operation,
        "root_service": summary.root_service,
        "root_missing": summary.root_missing,
        "services": summary.services,
        // Exact as text; as a number (milliseconds) for the page's clock.
        "start_unix_nanos": summary.start_unix_nanos.to_string(),
        "start_unix_ms": summary.start_unix_nanos as f64 / 1e6,
        "duration_nanos": summary.duration_nanos,
        "span_count": summary.span_count,
        "error_count": summary.error_count,
        "spans_not_kept": summary.spans_not_kept,
    })
}

fn trace_json(trace: &Assembled<'_>) -> Value {
    let fields = |fields: &[(String, FieldValue)]| -> Vec<Value> {
        fields
            .iter()
            .map(|(key, value)| {
                json!({ "key": key, "value": value.to_string(), "type": value.type_name() })
            })
            .collect()
    };
    let start = trace.summary.start_unix_nanos;
    let spans: Vec<Value> = trace
        .rows
        .iter()
        .map(|row| {
            let span = row.span;
            json!({
                "span_id": hex(span.span_id),
                "parent_id": span.parent_id.map(hex),
                "depth": row.depth,
                "orphan": row.orphan,
                "service": span.service,
                "operation": span.name,
                "kind": row.kind,
                "error": row.error,
                "offset_nanos": row.offset_nanos,
                "start_unix_nanos": row.start_unix_nanos.to_string(),
                "duration_nanos": row.duration_nanos,
                "tags": fields(&span.tags),
                "logs": span.logs.iter().map(|log| {
                    json!({
                        // Signed: a log may carry a time before the trace's first span.
                        "offset_nanos": i128::from(log.unix_nanos) - i128::from(start),
                        "fields": fields(&log.fields),
                    })
                }).collect::<Vec<_>>(),
                "references": span.references.iter().map(|r| {
                    json!({
                        "relationship": relationship_name(r.relationship),
                        "trace_id": hex(low_64(r.trace_id)),
                        "span_id": hex(r.span_id),
                        "in_trace": trace.span_ids.contains(&r.span_id),
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut value = summary_json(&trace.summary);
    value["spans"] = Value::Array(spans);
    value
}

fn page(body: &'static str, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = bytes(
        StatusCode::OK,
        content_type,
        Bytes::from_static(body.as_bytes()),
    );
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn json_response(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let mut response = bytes(
        status,
        "application/json",
        Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_hex_and_keyed_on_their_low_64_bits() {
        assert_eq!(parse_trace_id("00000000000000ab"), Some(0xab));
        assert_eq!(parse_trace_id("AB"), Some(0xab));
        assert_eq!(
            parse_trace_id("0123456789abcdef00000000000000ab"),
            Some(0xab)
        );
        for bad in [
            "",
            "xyz",
            "0123456789abcdef0123456789abcdef0",
            "-1",
            "ab/cd",
        ] {
            assert_eq!(parse_trace_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn filters_are_read_from_the_query_and_bad_values_explained() {
        let filter = parse_filter(
            "service=web%20front&operation=GET+%2Fa&errors=true&min_duration_ms=2.5&limit=3&x=1",
        )
        .unwrap();
        assert_eq!(
            filter,
            Filter {
                service: Some("web front".into()),
                operation: Some("GET /a".into()),
                errors_only: true,
                min_duration_nanos: 2_500_000,
                limit: 3,
            }
        );
        let default = parse_filter("service=&min_duration_ms=").unwrap();
        assert_eq!(default.service, None);
        assert_eq!(default.limit, DEFAULT_LIMIT);
        assert!(parse_filter("errors=maybe").unwrap_err().contains("errors"));
        assert!(parse_filter("min_duration_ms=-1")
            .unwrap_err()
            .contains("min_duration_ms"));
        assert!(parse_filter("min_duration_ms=NaN").is_err());
        assert!(parse_filter("limit=many").unwrap_err().contains("limit"));
    }
}
