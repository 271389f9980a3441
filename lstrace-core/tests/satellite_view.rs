//! The local satellite's web view, over real HTTP: its JSON API, its pages, its bounds.

use lstrace_core::protocol::lightstep::{
    key_value, KeyValue, LightStepRelationship, LightStepSpan, LightStepSpanContext, Log,
    Reference, ReportRequest, Reporter, Timestamp,
};
use lstrace_core::satellite::{LocalSatellite, ViewLimits, REPORT_PATH};
use prost::Message;
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Upper bound for waits; never a timing assertion.
const GENEROUS: Duration = Duration::from_secs(10);

const T0: u64 = 1_700_000_000_000_000_000;

fn start(limits: ViewLimits) -> LocalSatellite {
    LocalSatellite::start_with_view(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), limits).unwrap()
}

fn context(trace_id: u64, span_id: u64) -> Option<LightStepSpanContext> {
    Some(LightStepSpanContext {
        trace_id,
        span_id,
        baggage: Default::default(),
    })
}

fn kv(key: &str, value: key_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(value),
    }
}

/// A span of `trace`, `start_micros` after `T0`, lasting `micros`.
fn span(
    trace: u64,
    id: u64,
    parent: Option<u64>,
    name: &str,
    start_micros: u64,
    micros: u64,
) -> LightStepSpan {
    LightStepSpan {
        span_context: context(trace, id),
        operation_name: name.into(),
        references: parent
            .map(|p| Reference {
                relationship: LightStepRelationship::ChildOf as i32,
                span_context: context(trace, p),
            })
            .into_iter()
            .collect(),
        start_timestamp: Some(Timestamp::from_unix_nanos(T0 + start_micros * 1000)),
        duration_micros: micros,
        tags: vec![],
        logs: vec![],
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Reports `spans` as `service`, and waits until the satellite counted them.
async fn report(satellite: &LocalSatellite, service: &str, spans: Vec<LightStepSpan>) {
    let before = satellite.reports_received();
    let request = ReportRequest {
        reporter: Some(Reporter {
            reporter_id: 1,
            tags: vec![kv(
                "lightstep.component_name",
                key_value::Value::StringValue(service.into()),
            )],
        }),
        spans,
        ..ReportRequest::default()
    };
    let response = client()
        .post(format!("{}{REPORT_PATH}", satellite.url()))
        .header("Content-Type", "application/octet-stream")
        .body(request.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(satellite.reports_received() > before);
}

/// GETs `path` and returns the status and the JSON body.
async fn get_json(satellite: &LocalSatellite, path: &str) -> (u16, Value) {
    let response = client()
        .get(format!("{}{path}", satellite.url()))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&body).expect("the API answers JSON"),
    )
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_api_assembles_a_trace_reported_by_two_services_in_any_order() {
    let satellite = start(ViewLimits::default());
    let mut server = span(0xabc, 4, Some(3), "GET /stock", 300, 400);
    server.tags.push(kv(
        "span.kind",
        key_value::Value::StringValue("server".into()),
    ));
    server.logs.push(Log {
        timestamp: Some(Timestamp::from_unix_nanos(T0 + 450_000)),
        fields: vec![kv(
            "event",
            key_value::Value::StringValue("cache_miss".into()),
        )],
    });
    // The backend reports first, children before parents.
    report(
        &satellite,
        "backend",
        vec![span(0xabc, 5, Some(4), "db.query", 400, 100), server],
    )
    .await;
    let mut charge = span(0xabc, 6, Some(1), "charge", 900, 50);
    charge
        .tags
        .push(kv("error", key_value::Value::BoolValue(true)));
    charge
        .tags
        .push(kv("amount", key_value::Value::IntValue(1649)));
    let mut receipt = span(0xabc, 7, None, "send receipt", 950, 20);
    receipt.references.push(Reference {
        relationship: LightStepRelationship::FollowsFrom as i32,
        span_context: context(0xabc, 1),
    });
    report(
        &satellite,
        "frontend",
        vec![
            charge,
            receipt,
            span(0xabc, 3, Some(2), "fetch stock", 250, 500),
            span(0xabc, 2, Some(1), "load cart", 200, 600),
            span(0xabc, 1, None, "checkout", 0, 1000),
            span(0xabc, 8, Some(0x99), "lost parent", 10, 5),
        ],
    )
    .await;

    let (status, listing) = get_json(&satellite, "/api/traces").await;
    assert_eq!(status, 200);
    let traces = listing["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 1);
    let summary = &traces[0];
    assert_eq!(summary["trace_id"], "0000000000000abc");
    assert_eq!(summary["root_operation"], "checkout");
    assert_eq!(summary["root_service"], "frontend");
    assert_eq!(summary["root_missing"], false);
    assert_eq!(strings(&summary["services"]), ["frontend", "backend"]);
    assert_eq!(summary["start_unix_nanos"], T0.to_string());
    assert_eq!(summary["duration_nanos"], 1_000_000);
    assert_eq!(summary["span_count"], 8);
    assert_eq!(summary["error_count"], 1);
    assert_eq!(strings(&listing["services"]), ["backend", "frontend"]);
    assert_eq!(listing["stored"]["spans"], 8);
    assert_eq!(listing["evicted"]["traces"], 0);

    let (status, trace) = get_json(&satellite, "/api/traces/0000000000000abc").await;
    assert_eq!(status, 200);
    let rows: Vec<String> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}{}:{}{}",
                "  ".repeat(s["depth"].as_u64().unwrap() as usize),
                s["service"].as_str().unwrap(),
                s["operation"].as_str().unwrap(),
                if s["orphan"] == true { " (orphan)" } else { "" }
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            "frontend:checkout",
            "  frontend:load cart",
            "    frontend:fetch stock",
            "      backend:GET /stock",
            "        backend:db.query",
            "  frontend:charge",
            "  frontend:send receipt",
            "frontend:lost parent (orphan)",
        ]
    );
    let spans = trace["spans"].as_array().unwrap();
    let stock = &spans[3];
    assert_eq!(stock["span_id"], "0000000000000004");
    assert_eq!(stock["parent_id"], "0000000000000003");
    assert_eq!(stock["kind"], "server");
    assert_eq!(stock["offset_nanos"], 300_000);
    assert_eq!(stock["duration_nanos"], 400_000);
    assert_eq!(stock["logs"][0]["offset_nanos"], 450_000);
    assert_eq!(stock["logs"][0]["fields"][0]["value"], "cache_miss");
    let charge = &spans[5];
    assert_eq!(charge["error"], true);
    assert_eq!(
        charge["tags"][1],
        serde_json::json!({ "key": "amount", "value": "1649", "type": "int" })
    );
    let receipt = &spans[6];
    assert_eq!(receipt["references"][0]["relationship"], "follows_from");
    assert_eq!(receipt["references"][0]["in_trace"], true);
    let (status, summary_only) =
        get_json(&satellite, "/api/traces/0000000000000abc?summary=true").await;
    assert_eq!(status, 200);
    assert_eq!(summary_only["span_count"], 8);
    assert_eq!(summary_only.get("spans"), None);
    let lost = &spans[7];
    assert_eq!(lost["references"][0]["span_id"], "0000000000000099");
    assert_eq!(lost["references"][0]["in_trace"], false);
}

#[tokio::test]
async fn the_api_filters_and_explains_bad_requests() {
    let satellite = start(ViewLimits::default());
    let mut failed = span(2, 1, None, "GET /pay", 3000, 3000);
    failed
        .tags
        .push(kv("error", key_value::Value::BoolValue(true)));
    report(
        &satellite,
        "web",
        vec![
            span(1, 1, None, "GET /", 0, 1000),
            failed,
            span(3, 1, None, "GET /cart", 5000, 10),
        ],
    )
    .await;
    report(
        &satellite,
        "db",
        vec![span(3, 2, Some(1), "SELECT", 5001, 5)],
    )
    .await;
    let ids = |listing: &Value| -> Vec<String> {
        listing["traces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["trace_id"].as_str().unwrap()[14..].to_owned())
            .collect()
    };
    for (query, expected) in [
        ("", &["03", "02", "01"][..]),
        ("?limit=2", &["03", "02"]),
        ("?service=db", &["03"]),
        ("?operation=GET+%2F", &["01"]),
        ("?service=db&operation=GET%20%2Fcart", &[]),
        ("?errors=true", &["02"]),
        ("?min_duration_ms=1", &["02", "01"]),
        ("?min_duration_ms=1&errors=true&service=web", &["02"]),
    ] {
        let (status, listing) = get_json(&satellite, &format!("/api/traces{query}")).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(ids(&listing), expected, "{query}");
    }
    let (_, listing) = get_json(&satellite, "/api/traces?limit=1").await;
    assert_eq!(listing["matched"], 3);
    for (path, status, words) in [
        ("/api/traces?errors=perhaps", 400, "errors"),
        ("/api/traces?min_duration_ms=-3", 400, "min_duration_ms"),
        ("/api/traces?limit=ten", 400, "limit"),
        ("/api/traces/not-hex", 400, "hexadecimal"),
        ("/api/traces/00000000000000ff", 404, "evicted"),
    ] {
        let (got, body) = get_json(&satellite, path).await;
        assert_eq!(got, status, "{path}");
        assert!(
            body["error"].as_str().unwrap().contains(words),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn span_text_is_data_in_the_api_and_the_page_runs_only_its_own_script() {
    let satellite = start(ViewLimits::default());
    let hostile = "<img src=x onerror=alert(1)>";
    let mut root = span(5, 1, None, hostile, 0, 10);
    root.tags.push(kv(
        hostile,
        key_value::Value::StringValue("</script>\"'&".into()),
    ));
    report(&satellite, "<b>svc</b>", vec![root]).await;
    let (_, trace) = get_json(&satellite, "/api/traces/5").await;
    assert_eq!(trace["spans"][0]["operation"], hostile);
    assert_eq!(trace["spans"][0]["service"], "<b>svc</b>");
    assert_eq!(trace["spans"][0]["tags"][0]["key"], hostile);
    assert_eq!(trace["spans"][0]["tags"][0]["value"], "</script>\"'&");

    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/trace/0000000000000005", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
    ] {
        let response = client()
            .get(format!("{}{path}", satellite.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        let policy = response.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert!(!policy.contains("unsafe-inline"), "{policy}");
    }
    // The script never parses span text as HTML.
    let script = client()
        .get(format!("{}/app.js", satellite.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        assert!(!script.contains(sink), "app.js uses {sink}");
    }
    let post = client()
        .post(format!("{}/api/traces", satellite.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
}

#[tokio::test]
async fn without_a_view_there_are_no_pages() {
    let satellite = LocalSatellite::start().unwrap();
    assert_eq!(satellite.view_url(), None);
    assert_eq!(satellite.view_stats(), None);
    for path in ["/", "/api/traces", "/app.js"] {
        let response = client()
            .get(format!("{}{path}", satellite.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn memory_is_bounded_and_evictions_are_counted_and_shown() {
    let mut limits = ViewLimits::default();
    limits.max_traces = 3;
    limits.max_spans = 10;
    let satellite = start(limits);
    assert_eq!(
        satellite.view_url(),
        Some(format!("http://{}/", satellite.addr()))
    );
    for trace in 1..=5 {
        report(
            &satellite,
            "svc",
            vec![
                span(trace, 1, None, "root", trace, 1),
                span(trace, 2, Some(1), "kid", trace, 1),
            ],
        )
        .await;
    }
    // Five traces into three: the first two are evicted.
    let (_, listing) = get_json(&satellite, "/api/traces").await;
    assert_eq!(
        listing["stored"],
        serde_json::json!({ "traces": 3, "spans": 6 })
    );
    assert_eq!(
        listing["evicted"],
        serde_json::json!({ "traces": 2, "spans": 4 })
    );
    assert_eq!(
        listing["limits"],
        serde_json::json!({ "max_traces": 3, "max_spans": 10 })
    );
    assert_eq!(get_json(&satellite, "/api/traces/1").await.0, 404);
    assert_eq!(get_json(&satellite, "/api/traces/3").await.0, 200);
    // One trace of twelve spans: it keeps ten, the others make room and are counted.
    report(
        &satellite,
        "svc",
        (1..=12)
            .map(|id| span(9, id, None, "wide", id, 1))
            .collect(),
    )
    .await;
    let stats = satellite.view_stats().unwrap();
    assert_eq!(
        (
            stats.traces,
            stats.spans,
            stats.evicted_traces,
            stats.evicted_spans
        ),
        (1, 10, 5, 12)
    );
    let (_, trace) = get_json(&satellite, "/api/traces/9").await;
    assert_eq!(trace["span_count"], 10);
    assert_eq!(trace["spans_not_kept"], 2);
    // With a view, the satellite keeps no list of reports: only the bounded traces.
    assert!(satellite.wait_for_reports(6, GENEROUS));
    assert!(satellite.wait_for_spans(22, GENEROUS));
    assert!(satellite.reports().is_empty());
    assert!(satellite.spans().is_empty());
}
