//! The satellite's web view in a real browser: headless Chromium, driven over WebDriver,
//! looks at traces that a traced program reports while the page is open.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium chromium-driver`;
//! `.ci/run` installs them). Without them the test is skipped with a note, except in CI
//! (`CI=true`), where it fails. It saves screenshots under `target/` and prints how long the
//! page takes to draw a 10,000-span trace (see BENCHMARKS.md).

mod webdriver;

use lstrace::protocol::lightstep::{
    key_value, KeyValue, LightStepRelationship, LightStepSpan, LightStepSpanContext, Reference,
    ReportRequest, Reporter, Timestamp,
};
use lstrace::satellite::{LocalSatellite, ViewLimits, REPORT_PATH};
use lstrace::{traced, Options};
use prost::Message;
use serde_json::{json, Value};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use webdriver::{Browser, GENEROUS};

const HOSTILE: &str = "<img src=x onerror=alert(1)>";

/// Where the second service of the trace reports (set once the satellite runs).
static SATELLITE_URL: OnceLock<String> = OnceLock::new();

#[derive(Debug)]
struct Declined;

impl fmt::Display for Declined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("card declined")
    }
}

async fn pause() {
    tokio::time::sleep(Duration::from_millis(2)).await;
}

/// The traced workload: a checkout through a second service, with a failing payment and a
/// span whose name is HTML.
#[traced(kind = server, tags("http.method" = "POST"))]
async fn checkout() {
    load_cart().await;
    fetch_stock().await;
    {
        let mut hostile = lstrace::span(HOSTILE)
            .with_tag("<b>key</b>", "<script>document.title='pwned'</script>")
            .start();
        hostile.log([("event", "<i>markup</i>")]);
        std::thread::sleep(Duration::from_millis(1));
        hostile.finish();
    }
    pause().await;
    if charge_card(1649).await.is_err() {
        lstrace::log([("event", "payment failed")]);
    }
}

#[traced]
async fn load_cart() {
    pause().await;
    db_query().await;
}

#[traced(kind = client, tags("db.statement" = "SELECT * FROM carts"))]
async fn db_query() {
    pause().await;
}

#[traced(kind = client, err, args(amount))]
async fn charge_card(amount: u64) -> Result<(), Declined> {
    pause().await;
    let _ = amount;
    Err(Declined)
}

/// A call to the `inventory` service: its server span and its child are reported by hand,
/// as that service's own tracer would, under this client span.
#[traced(name = "GET /stock", kind = client)]
async fn fetch_stock() {
    let caller = lstrace::current().expect("inside a traced function");
    let start = unix_nanos();
    tokio::time::sleep(Duration::from_millis(4)).await;
    let trace_id = caller.trace_id().low();
    let context = |span_id| {
        Some(LightStepSpanContext {
            trace_id,
            span_id,
            baggage: Default::default(),
        })
    };
    let span = |id: u64, parent: u64, name: &str, offset_micros: u64, micros: u64| LightStepSpan {
        span_context: context(id),
        operation_name: name.into(),
        references: vec![Reference {
            relationship: LightStepRelationship::ChildOf as i32,
            span_context: context(parent),
        }],
        start_timestamp: Some(Timestamp::from_unix_nanos(start + offset_micros * 1000)),
        duration_micros: micros,
        tags: vec![KeyValue {
            key: "span.kind".into(),
            value: Some(key_value::Value::StringValue(
                if name.starts_with("GET") {
                    "server"
                } else {
                    "internal"
                }
                .into(),
            )),
        }],
        logs: vec![],
    };
    let server_id = trace_id ^ caller.span_id().get() ^ 0x5eed;
    report(
        "inventory",
        vec![
            span(server_id, caller.span_id().get(), "GET /stock", 500, 3000),
            span(server_id + 1, server_id, "stock.lookup", 1000, 1500),
        ],
    )
    .await;
}

/// A root of its own, reported while the page is open.
#[traced]
async fn inventory_sync() {
    pause().await;
}

fn unix_nanos() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Reports `spans` to the satellite as `service`.
async fn report(service: &str, spans: Vec<LightStepSpan>) {
    let request = ReportRequest {
        reporter: Some(Reporter {
            reporter_id: 7,
            tags: vec![KeyValue {
                key: "lightstep.component_name".into(),
                value: Some(key_value::Value::StringValue(service.into())),
            }],
        }),
        spans,
        ..ReportRequest::default()
    };
    let url = SATELLITE_URL.get().expect("the satellite runs");
    let response = client()
        .post(format!("{url}{REPORT_PATH}"))
        .header("Content-Type", "application/octet-stream")
        .body(request.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn api(path: &str) -> Value {
    let url = SATELLITE_URL.get().expect("the satellite runs");
    let response = client().get(format!("{url}{path}")).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

/// Flushes the tracer from a thread that may block.
async fn flush() {
    let report = tokio::task::spawn_blocking(|| lstrace::flush(GENEROUS))
        .await
        .unwrap();
    assert!(!report.timed_out, "{report:?}");
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

/// What the page shows of the waterfall's rows, with the geometry of their bars.
const ROWS_SCRIPT: &str = "
    return [...document.querySelectorAll('.span-row')].map((row) => {
        const track = row.querySelector('.track').getBoundingClientRect();
        const bar = row.querySelector('.bar').getBoundingClientRect();
        const text = (css) => { const e = row.querySelector(css); return e ? e.textContent : null; };
        return {
            id: row.dataset.spanId, depth: Number(row.dataset.depth),
            parent: row.dataset.parentId || null,
            operation: text('.operation'), service: text('.service-chip'),
            kind: text('.kind'), error: row.classList.contains('error'), mark: text('.error-mark'),
            logMarks: row.querySelectorAll('.log-mark').length,
            trackLeft: track.left, trackWidth: track.width, barLeft: bar.left, barWidth: bar.width,
        };
    });";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waterfall_in_a_real_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let satellite = LocalSatellite::start_with_view(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ViewLimits::default(),
    )
    .unwrap();
    SATELLITE_URL.set(satellite.url()).unwrap();
    let _tracer = lstrace::init(
        Options::new("dev-token")
            .collector_url(satellite.url())
            .component_name("frontend")
            .reporting_period(Duration::from_millis(200))
            .min_reporting_period(Duration::from_millis(50)),
    )
    .unwrap();

    // The workload reports while the page loads.
    let stop = Arc::new(AtomicBool::new(false));
    let workload = tokio::spawn({
        let stop = Arc::clone(&stop);
        async move {
            while !stop.load(Ordering::Relaxed) {
                checkout().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let view = satellite.view_url().unwrap();
    browser.goto(&view).await;
    browser
        .wait_for(
            "the trace list",
            "return document.querySelectorAll('#traces-body tr.trace-row').length > 0",
            json!([]),
        )
        .await;
    stop.store(true, Ordering::Relaxed);
    workload.await.unwrap();
    flush().await;

    // Live update: a new trace shows up without reloading the page.
    browser
        .run("window.notReloaded = true; return null;", json!([]))
        .await;
    inventory_sync().await;
    flush().await;
    browser
        .wait_for(
            "the new trace in the list",
            "return [...document.querySelectorAll('#traces-body .trace-link')]
                .some((a) => a.textContent === 'inventory_sync')",
            json!([]),
        )
        .await;
    assert_eq!(
        browser
            .run("return window.notReloaded === true;", json!([]))
            .await,
        true,
        "the list updated itself, without a reload"
    );

    // The most recent whole checkout, as the API has it.
    let listing = api("/api/traces?operation=checkout").await;
    let summary = &listing["traces"][0];
    let trace_id = summary["trace_id"].as_str().unwrap().to_owned();
    assert_eq!(summary["span_count"], 8, "{summary}");
    assert_eq!(summary["error_count"], 1);
    let trace = api(&format!("/api/traces/{trace_id}")).await;

    // The list marks its error, then opens it on a click.
    let list_row = format!("#traces-body tr[data-trace-id='{trace_id}']");
    let list_mark = browser
        .wait_for(
            "the checkout in the list",
            "const row = document.querySelector(arguments[0]);
             return row && row.querySelector('.error-mark') && [
                row.querySelector('.trace-link').textContent,
                row.querySelector('.error-mark').textContent,
                [...row.querySelectorAll('.service-chip')].map((c) => c.textContent)];",
            json!([list_row]),
        )
        .await;
    assert_eq!(
        list_mark,
        json!(["checkout", "1 error", ["frontend", "inventory"]])
    );
    browser.click(&format!("{list_row} .trace-link")).await;
    browser
        .wait_for(
            "the waterfall",
            "return document.querySelectorAll('.span-row').length === 8",
            json!([]),
        )
        .await;

    // Rows in order, nested under their parents, with their services, kinds and error marks.
    let rows = browser.run(ROWS_SCRIPT, json!([])).await;
    let rows = rows.as_array().unwrap();
    // "depth service operation [kind] (mark)" per row.
    let shown: Vec<String> = rows
        .iter()
        .map(|r| {
            let mut line = format!(
                "{} {} {}",
                r["depth"],
                r["service"].as_str().unwrap(),
                r["operation"].as_str().unwrap()
            );
            if let Some(kind) = r["kind"].as_str() {
                line += &format!(" [{kind}]");
            }
            if let Some(mark) = r["mark"].as_str() {
                line += &format!(" ({mark})");
            }
            line
        })
        .collect();
    assert_eq!(
        shown,
        [
            "0 frontend checkout [server]",
            "1 frontend load_cart",
            "2 frontend db_query [client]",
            "1 frontend GET /stock [client]",
            "2 inventory GET /stock [server]",
            "3 inventory stock.lookup [internal]",
            &format!("1 frontend {HOSTILE}"),
            "1 frontend charge_card [client] (error)",
        ]
    );
    let api_spans = trace["spans"].as_array().unwrap();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(
            row["id"], api_spans[i]["span_id"],
            "row {i} is the API's span {i}"
        );
        assert_eq!(row["error"], api_spans[i]["error"]);
        let depth = row["depth"].as_u64().unwrap();
        if depth > 0 {
            let parent = rows[..i]
                .iter()
                .rev()
                .find(|r| r["depth"].as_u64() == Some(depth - 1))
                .expect("a parent row above");
            assert_eq!(row["parent"], parent["id"], "row {i} sits under its parent");
        }
    }

    // Bars on the shared time axis: where the span times put them, to a pixel and a half.
    let total = trace["duration_nanos"].as_f64().unwrap();
    for (row, span) in rows.iter().zip(api_spans) {
        let width = row["trackWidth"].as_f64().unwrap();
        let left = row["barLeft"].as_f64().unwrap() - row["trackLeft"].as_f64().unwrap();
        let expected_left = span["offset_nanos"].as_f64().unwrap() / total * width;
        let expected_width = (span["duration_nanos"].as_f64().unwrap() / total * width).max(1.0);
        assert!(
            (left - expected_left).abs() <= 1.5,
            "{}: bar at {left:.1} px, its start puts it at {expected_left:.1}",
            span["operation"]
        );
        assert!(
            (row["barWidth"].as_f64().unwrap() - expected_width).abs() <= 1.5,
            "{}: bar {} px wide, its duration makes {expected_width:.1}",
            span["operation"],
            row["barWidth"]
        );
    }
    assert_eq!(
        rows[0]["barLeft"], rows[0]["trackLeft"],
        "the root starts the axis"
    );

    // The hostile name is shown as those characters; nothing it says became markup.
    let markup = browser
        .run(
            "return [document.querySelectorAll('img, b, i, main script').length, document.title];",
            json!([]),
        )
        .await;
    assert_eq!(markup, json!([0, "lstrace satellite"]));
    let row_of = |i: usize| {
        format!(
            ".span-row[data-span-id='{}']",
            rows[i]["id"].as_str().unwrap()
        )
    };
    browser.click(&row_of(6)).await;
    let detail = browser
        .wait_for(
            "the hostile span's details",
            "const d = document.querySelector('.detail');
             return d && [...d.querySelectorAll('.tags tr')].map((r) => r.textContent);",
            json!([]),
        )
        .await;
    assert_eq!(
        detail,
        json!(["<b>key</b><script>document.title='pwned'</script>"])
    );
    let markup = browser
        .run(
            "return [document.querySelectorAll('img, b, i, main script').length, document.title];",
            json!([]),
        )
        .await;
    assert_eq!(markup, json!([0, "lstrace satellite"]));

    // A click on the failed span: its tags, its log at its time on the bar, its reference.
    browser.click(&row_of(7)).await;
    let detail = browser
        .wait_for(
            "the failed span's details",
            "const d = document.querySelector('.detail');
             const cells = (css) => [...d.querySelectorAll(css)].map((e) => e.textContent);
             return d && d.previousElementSibling.querySelector('.operation').textContent === 'charge_card'
                && { tags: cells('.tags tr'), logs: cells('.logs tr .value'),
                     references: cells('.references tr') };",
            json!([]),
        )
        .await;
    let charge = &api_spans[7];
    let parent = charge["parent_id"].as_str().unwrap();
    assert_eq!(
        detail,
        json!({
            "tags": ["amount1649", "span.kindclient", "errortrue"],
            "logs": ["event=error\nmessage=card declined"],
            "references": [format!("child_of{parent}")],
        })
    );
    assert_eq!(rows[7]["logMarks"], 1);
    let log_offset = charge["logs"][0]["offset_nanos"].as_f64().unwrap();
    let mark_left = browser
        .run(
            "const row = document.querySelectorAll('.span-row')[7];
             const track = row.querySelector('.track').getBoundingClientRect();
             const mark = row.querySelector('.log-mark').getBoundingClientRect();
             return [mark.left + mark.width / 2 - track.left, track.width];",
            json!([]),
        )
        .await;
    let expected = log_offset / total * mark_left[1].as_f64().unwrap();
    assert!(
        (mark_left[0].as_f64().unwrap() - expected).abs() <= 1.5,
        "the log's mark at {mark_left}, its time puts it at {expected:.1}"
    );
    let dir = target_dir();
    browser.screenshot(&dir.join("waterfall.png")).await;
    browser.goto(&view).await;
    browser
        .wait_for(
            "the list again",
            "return document.querySelectorAll('#traces-body tr.trace-row').length > 1",
            json!([]),
        )
        .await;
    browser.screenshot(&dir.join("waterfall-list.png")).await;

    // A trace of 10,000 spans: how long the page takes to draw it (reported, not asserted).
    let spans = wide_trace(0x10_000, 10_000);
    report("load", spans).await;
    browser.goto(&format!("{view}trace/0000000000010000")).await;
    let timing = browser
        .wait_for(
            "the 10,000-span waterfall",
            "return document.body.dataset.renderedSpans === '10000'
                && [Number(document.body.dataset.buildMs), Number(document.body.dataset.renderMs),
                    Number(document.body.dataset.readyMs),
                    document.querySelectorAll('.span-row').length];",
            json!([]),
        )
        .await;
    assert_eq!(timing[3], 10_000);
    println!(
        "waterfall of 10,000 spans: rows built in {} ms, drawn (with layout) in {} ms, \
         shown {} ms after navigation",
        timing[0], timing[1], timing[2]
    );
}

/// A trace of `count` spans, four children per span, each a little later and shorter than
/// its parent.
fn wide_trace(trace_id: u64, count: u64) -> Vec<LightStepSpan> {
    let start = unix_nanos();
    let context = |span_id| {
        Some(LightStepSpanContext {
            trace_id,
            span_id,
            baggage: Default::default(),
        })
    };
    (1..=count)
        .map(|id| {
            let parent = (id > 1).then(|| (id - 2) / 4 + 1);
            LightStepSpan {
                span_context: context(id),
                operation_name: format!("step {id}"),
                references: parent
                    .map(|p| Reference {
                        relationship: LightStepRelationship::ChildOf as i32,
                        span_context: context(p),
                    })
                    .into_iter()
                    .collect(),
                start_timestamp: Some(Timestamp::from_unix_nanos(start + id * 10_000)),
                duration_micros: 100_000 - id * 9,
                tags: vec![KeyValue {
                    key: "n".into(),
                    value: Some(key_value::Value::IntValue(i64::try_from(id).unwrap())),
                }],
                logs: vec![],
            }
        })
        .collect()
}
