//! tokio `tracing` 0.1 with `#[instrument]`: on `tracing-subscriber`'s registry alone, with
//! `tracing-opentelemetry` and an OpenTelemetry SDK tracer provider whose batch span processor
//! exports to an exporter that discards (the way tracing users export spans), with lstrace's
//! bridge layer (recording into lstrace's discarding recorder, or with no lstrace tracer), or
//! with fastrace's bridge layer (`fastrace-tracing`, recording into fastrace's discarding
//! reporter).

use crate::cases::{Case, Library};
use crate::with_fastrace::Fastrace;
use crate::with_lstrace::{Drain, Lstrace};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use tracing::instrument;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::Registry;
use tracing_subscriber::Layer;

/// How `tracing` records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pipeline {
    /// `tracing-subscriber`'s registry only: spans are tracked, and go nowhere.
    Registry,
    /// The registry with the OpenTelemetry layer and an SDK tracer provider.
    OpenTelemetry,
    /// The registry with lstrace's bridge layer, recording as the `lstrace` library does.
    Bridge,
    /// The same, draining as `lstrace, drain inline` does: the benchmark thread moves every
    /// span into the recorder after each root, so that the whole pipeline runs on one thread
    /// (and a profiler counts all of it, with no span dropped for a drain thread that lags).
    BridgeInline,
    /// The registry with lstrace's bridge layer and no lstrace tracer: what the layer costs
    /// while lstrace records nothing (compare with `Registry`).
    BridgeIdle,
    /// The registry with `fastrace-tracing`'s layer, recording as the `fastrace` library does;
    /// each root runs under a fastrace root span, which that layer needs to record anything.
    FastraceBridge,
}

impl Pipeline {
    /// How a bridge pipeline's lstrace records: as the `lstrace` library's measurements do.
    fn bridge_recorder(self) -> Option<Lstrace> {
        match self {
            Pipeline::Bridge => Some(Lstrace(Drain::Background)),
            Pipeline::BridgeInline => Some(Lstrace(Drain::Inline)),
            _ => None,
        }
    }
}

/// tracing with the given pipeline.
pub(crate) struct Tracing(pub Pipeline);

static DELIVERED: AtomicU64 = AtomicU64::new(0);
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
/// Whether `DELIVERED` counts: with OpenTelemetry always, with the registry only when verifying.
static COUNTING: AtomicBool = AtomicBool::new(false);

/// Counts the spans it is given and drops them.
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        DELIVERED.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Counts closed spans: the registry alone has no sink, so the smoke run adds this layer to
/// check that spans are really made (never in a measured run).
struct CountClosed;

impl<S: tracing::Subscriber> Layer<S> for CountClosed {
    fn on_close(&self, _id: tracing::span::Id, _ctx: Context<'_, S>) {
        DELIVERED.fetch_add(1, Ordering::Relaxed);
    }
}

#[instrument(skip_all)]
#[inline(never)]
fn child() {
    black_box(());
}

#[instrument(skip_all)]
#[inline(never)]
fn wide(n: usize) {
    for _ in 0..n {
        child();
    }
}

#[instrument(skip_all)]
#[inline(never)]
fn nested(depth: usize) {
    if depth > 1 {
        nested(black_box(depth - 1));
    }
}

#[instrument(skip_all)]
#[inline(never)]
fn deep(depth: usize) {
    nested(depth - 1);
}

#[instrument(skip_all)]
#[inline(never)]
async fn child_async() {
    black_box(());
}

#[instrument(skip_all)]
async fn wide_async(n: usize) {
    for _ in 0..n {
        child_async().await;
    }
}

async fn children_async(n: usize) {
    for _ in 0..n {
        child_async().await;
    }
}

impl Library for Tracing {
    fn supports(&self, case: Case) -> bool {
        if matches!(self.0, Pipeline::FastraceBridge | Pipeline::BridgeInline) {
            return matches!(case, Case::Wide(_) | Case::Async(_));
        }
        match case {
            // The registry has no sampling (nor has a `tracing` root span through the bridge),
            // and without a subscriber every pipeline is one.
            Case::Unsampled(_) | Case::SampledOut(_) => self.0 == Pipeline::OpenTelemetry,
            Case::NoTracer(_) => self.0 == Pipeline::Registry,
            Case::Tagged(_) => false,
            _ => true,
        }
    }

    fn init(&self, case: Case, verify: bool) {
        if !case.initialises_tracer() {
            return;
        }
        COUNTING.store(
            (verify
                && !matches!(
                    self.0,
                    Pipeline::Bridge | Pipeline::BridgeInline | Pipeline::FastraceBridge
                ))
                || self.0 == Pipeline::OpenTelemetry,
            Ordering::Relaxed,
        );
        let installed = match self.0 {
            Pipeline::Registry if verify => {
                tracing::subscriber::set_global_default(Registry::default().with(CountClosed))
            }
            Pipeline::Registry => tracing::subscriber::set_global_default(Registry::default()),
            Pipeline::Bridge | Pipeline::BridgeInline => {
                if let Some(recorder) = self.0.bridge_recorder() {
                    recorder.init(case, verify);
                }
                tracing::subscriber::set_global_default(
                    Registry::default().with(lstrace::bridge::tracing::layer()),
                )
            }
            Pipeline::FastraceBridge => {
                Fastrace.init(case, verify);
                tracing::subscriber::set_global_default(
                    Registry::default().with(fastrace_tracing::FastraceCompatLayer::new()),
                )
            }
            Pipeline::BridgeIdle if verify => tracing::subscriber::set_global_default(
                Registry::default()
                    .with(CountClosed)
                    .with(lstrace::bridge::tracing::layer()),
            ),
            Pipeline::BridgeIdle => tracing::subscriber::set_global_default(
                Registry::default().with(lstrace::bridge::tracing::layer()),
            ),
            Pipeline::OpenTelemetry => {
                let processor = BatchSpanProcessor::builder(Discard)
                    // Large enough that the queue does not overflow between two samples'
                    // flushes, so that every span's export work is paid for.
                    .with_batch_config(
                        BatchConfigBuilder::default()
                            .with_max_queue_size(1 << 20)
                            .build(),
                    )
                    .build();
                let sampler = match case {
                    Case::Unsampled(_) => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
                    Case::SampledOut(_) => {
                        Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(0.0)))
                    }
                    _ => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
                };
                let provider = SdkTracerProvider::builder()
                    .with_span_processor(processor)
                    .with_sampler(sampler)
                    .build();
                let tracer = provider.tracer("lstrace-benches");
                let _ = PROVIDER.set(provider);
                tracing::subscriber::set_global_default(
                    Registry::default().with(tracing_opentelemetry::layer().with_tracer(tracer)),
                )
            }
        };
        installed.expect("tracing: a subscriber was installed twice");
    }

    fn iteration(&self, case: Case) {
        if self.0 == Pipeline::FastraceBridge {
            // The fastrace root stands for the `tracing` root of the other pipelines.
            let root = fastrace::Span::root("root", fastrace::prelude::SpanContext::random());
            match case {
                Case::Wide(n) => {
                    let _parent = root.set_local_parent();
                    for _ in 0..n {
                        child();
                    }
                }
                Case::Async(n) => {
                    use fastrace::future::FutureExt as _;
                    futures::executor::block_on(children_async(n).in_span(root));
                }
                _ => unreachable!("not a fastrace-tracing case"),
            }
            return;
        }
        match case {
            Case::Wide(n) | Case::WideTwoThreads(n) | Case::Unsampled(n) | Case::SampledOut(n) => {
                wide(n)
            }
            Case::Deep(depth) => deep(depth),
            Case::Async(n) => futures::executor::block_on(wide_async(n)),
            Case::NoTracer(n) => {
                for _ in 0..n {
                    child();
                }
            }
            Case::Tagged(_) => unreachable!("not a tracing case"),
        }
        if self.0 == Pipeline::BridgeInline {
            lstrace::recorder::drain();
        }
    }

    fn settle(&self) {
        if let Some(recorder) = self.0.bridge_recorder() {
            recorder.settle();
        }
        if self.0 == Pipeline::FastraceBridge {
            Fastrace.settle();
        }
        if let Some(provider) = PROVIDER.get() {
            provider
                .force_flush()
                .expect("flushing the OpenTelemetry provider");
        }
    }

    fn delivered(&self) -> Option<u64> {
        if let Some(recorder) = self.0.bridge_recorder() {
            return recorder.delivered();
        }
        if self.0 == Pipeline::FastraceBridge {
            return Fastrace.delivered();
        }
        COUNTING
            .load(Ordering::Relaxed)
            .then(|| DELIVERED.load(Ordering::Relaxed))
    }

    fn dropped(&self) -> u64 {
        if let Some(recorder) = self.0.bridge_recorder() {
            return recorder.dropped();
        }
        0
    }
}
