//! Reporting over OTLP/HTTP: the same instrumentation, sent as OpenTelemetry spans.
//!
//! With neither `OTEL_EXPORTER_OTLP_ENDPOINT` nor `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` set,
//! it starts a local satellite on 127.0.0.1, exports to its `/v1/traces`, and prints the trace
//! tree it received. With one of them set, it exports there instead (an OpenTelemetry
//! Collector, Jaeger, Grafana Tempo, ServiceNow Cloud Observability...), honouring the other
//! `OTEL_*` variables (headers, timeout, compression, service name, resource attributes) and
//! `LS_ACCESS_TOKEN`, sent as `lightstep-access-token` when set.
//!
//! ```sh
//! cargo run -p lstrace-examples --example otlp
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 OTEL_SERVICE_NAME=shop \
//!     cargo run -p lstrace-examples --example otlp
//! ```

use lstrace::reporter::Protocol;
use lstrace::satellite::LocalSatellite;
use lstrace::{traced, Options};
use std::process::ExitCode;
use std::time::Duration;

/// The spans one request makes.
const SPANS_PER_REQUEST: usize = 3;

#[traced(kind = server, tags("http.method" = "GET", "http.route" = "/stock/:sku"), args(sku))]
async fn get_stock(sku: u64) -> u64 {
    let cached = cache_lookup(sku).await;
    match cached {
        Some(count) => count,
        None => query_inventory(sku).await.unwrap_or(0),
    }
}

#[traced(args(sku))]
async fn cache_lookup(sku: u64) -> Option<u64> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    lstrace::log([("event", "cache_miss"), ("cache", "stock")]);
    (sku == 0).then_some(0)
}

/// An exit span that fails: its OTLP status is ERROR, with the error's message.
#[traced(kind = client, tags("db.system" = "postgresql"), args(sku), err)]
async fn query_inventory(sku: u64) -> Result<u64, String> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    Err(format!("inventory row {sku} is locked"))
}

/// Whether the environment names an OTLP endpoint.
fn endpoint_from_env() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()))
}

/// Runs the workload, reporting to `satellite` over OTLP, or to the environment's endpoint
/// without one; returns the tree the satellite received.
async fn run(
    satellite: Option<&LocalSatellite>,
) -> Result<Option<String>, Box<dyn std::error::Error>> {
    let options = match satellite {
        // No token: OTLP backends may need none (or a header, see `Options::header`).
        Some(satellite) => Options::new("")
            .protocol(Protocol::Otlp)
            .collector_url(satellite.url())
            .component_name("otlp-example"),
        None => Options::from_env(),
    };
    let tracer = lstrace::init(options)?;
    println!("in stock: {}", get_stock(7).await);
    let report = tracer.close_async(Duration::from_secs(10)).await;
    println!("{report:?}");
    let Some(satellite) = satellite else {
        return Ok(None);
    };
    if !satellite.wait_for_spans(SPANS_PER_REQUEST, Duration::from_secs(10)) {
        return Err("the local satellite did not receive every span".into());
    }
    Ok(Some(satellite.tree()))
}

#[tokio::main]
async fn main() -> ExitCode {
    let satellite = if endpoint_from_env() {
        None
    } else {
        match LocalSatellite::start() {
            Ok(satellite) => Some(satellite),
            Err(e) => {
                eprintln!("could not start a local satellite: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    match run(satellite.as_ref()).await {
        Ok(Some(tree)) => {
            println!("\nThe local satellite received over OTLP:\n\n{tree}");
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!("Spans were exported to the endpoint the environment names.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("the OTLP example failed: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::run;
    use lstrace::satellite::LocalSatellite;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_satellite_receives_the_request_over_otlp() {
        let satellite = LocalSatellite::start().unwrap();
        let tree = run(Some(&satellite)).await.unwrap().unwrap();
        assert_eq!(
            tree,
            "get_stock [http.method=GET, http.route=/stock/:sku, sku=7, span.kind=server]\n  \
             cache_lookup [sku=7]\n  \
             query_inventory [db.system=postgresql, error=true, sku=7, span.kind=client]\n"
        );
        assert!(satellite.reports().is_empty(), "nothing over LightStep");
        let exports = satellite.otlp_requests();
        assert!(!exports.is_empty());
        let failed = satellite
            .otlp_spans()
            .into_iter()
            .find(|s| s.name == "query_inventory")
            .unwrap();
        assert_eq!(failed.status.unwrap().message, "inventory row 7 is locked");
    }
}
