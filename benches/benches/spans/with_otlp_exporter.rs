//! The end-to-end peer: `tracing` spans recorded by `tracing-opentelemetry` into the
//! OpenTelemetry SDK, whose batch span processor hands them to `opentelemetry-otlp`'s
//! HTTP/protobuf exporter, posting to the local satellite's `/v1/traces`: the way a tracing
//! user reports over OTLP.

use crate::e2e::{self, Outcome};
use lstrace::satellite::LocalSatellite;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tracing_subscriber::layer::SubscriberExt as _;

/// One span with three fields (a string, an integer, a boolean) and one event, as lstrace's.
#[inline(never)]
fn one_span(i: u64) {
    let span = tracing::info_span!("e2e.op", component = "bench", i, ok = true);
    let _entered = span.enter();
    tracing::info!(event = "step");
    black_box(i);
}

/// Makes spans for `seconds` as fast as one thread can, then flushes the SDK.
pub(crate) fn run(satellite: &LocalSatellite, seconds: f64) -> Result<Outcome, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", satellite.url()))
        .build()
        .map_err(|e| format!("exporter: {e}"))?;
    // Given lstrace's settings: the same queue, batches as often, and big ones.
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(200_000)
                // Bodies of about 640 bytes a span: 4096 stay under the satellite's 4 MiB.
                .with_max_export_batch_size(4096)
                .with_scheduled_delay(Duration::from_millis(100))
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    let tracer = provider.tracer("lstrace-benches");
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry::Registry::default()
            .with(tracing_opentelemetry::layer().with_tracer(tracer)),
    )
    .map_err(|e| format!("subscriber: {e}"))?;
    let mut outcome = Outcome::default();
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        for _ in 0..1000 {
            one_span(outcome.created);
            outcome.created += 1;
        }
    }
    provider.force_flush().map_err(|e| format!("flush: {e}"))?;
    outcome.seconds = start.elapsed().as_secs_f64();
    outcome.cpu_seconds = e2e::thread_cpu_seconds(|name| !name.starts_with(e2e::SATELLITE_THREAD));
    // The batch processor's thread, and the runtime thread its blocking HTTP client sends on.
    outcome.reporter_cpu_seconds = e2e::thread_cpu_seconds(|name| {
        name.starts_with("OpenTelemetry") || name.starts_with("reqwest-intern")
    });
    e2e::delivered(satellite, &mut outcome);
    outcome.sent = outcome.satellite_spans;
    outcome.dropped = outcome.created - outcome.sent;
    let _ = provider.shutdown();
    Ok(outcome)
}
