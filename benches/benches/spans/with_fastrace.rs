//! fastrace 0.7 with `#[trace]`, reporting to a reporter that discards.
//!
//! fastrace's own collector thread turns each finished trace into span records and hands
//! them to the reporter; `fastrace::flush` pushes everything pending through.

use crate::cases::{Case, Library};
use fastrace::collector::{Config, Reporter};
use fastrace::prelude::*;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

/// fastrace with its global collector.
pub(crate) struct Fastrace;

static DELIVERED: AtomicU64 = AtomicU64::new(0);

/// Counts the spans it is given and drops them.
struct Discard;

impl Reporter for Discard {
    fn report(&mut self, spans: Vec<SpanRecord>) {
        DELIVERED.fetch_add(spans.len() as u64, Ordering::Relaxed);
    }
}

#[trace]
#[inline(never)]
fn child() {
    black_box(());
}

#[inline(never)]
fn wide(root: SpanContext, n: usize) {
    let root = Span::root("root", root);
    let _parent = root.set_local_parent();
    for _ in 0..n {
        child();
    }
}

#[trace]
#[inline(never)]
fn nested(depth: usize) {
    if depth > 1 {
        nested(black_box(depth - 1));
    }
}

#[inline(never)]
fn deep(depth: usize) {
    let root = Span::root("root", SpanContext::random());
    let _parent = root.set_local_parent();
    nested(depth - 1);
}

#[trace]
#[inline(never)]
async fn child_async() {
    black_box(());
}

async fn children_async(n: usize) {
    for _ in 0..n {
        child_async().await;
    }
}

impl Library for Fastrace {
    fn supports(&self, case: Case) -> bool {
        // fastrace has no sampler; the tagged case is lstrace's own.
        !matches!(case, Case::SampledOut(_) | Case::Tagged(_))
    }

    fn init(&self, case: Case, _verify: bool) {
        if case.initialises_tracer() {
            fastrace::set_reporter(Discard, Config::default());
        }
    }

    fn iteration(&self, case: Case) {
        match case {
            Case::Wide(n) | Case::WideTwoThreads(n) => wide(SpanContext::random(), n),
            Case::Deep(depth) => deep(depth),
            Case::Async(n) => {
                let root = Span::root("root", SpanContext::random());
                futures::executor::block_on(children_async(n).in_span(root));
            }
            Case::NoTracer(n) => {
                for _ in 0..n {
                    child();
                }
            }
            Case::Unsampled(n) => wide(SpanContext::random().sampled(false), n),
            Case::SampledOut(_) => unreachable!("fastrace has no sampler"),
            Case::Tagged(_) => unreachable!("not a fastrace case"),
        }
    }

    fn settle(&self) {
        fastrace::flush();
    }

    fn delivered(&self) -> Option<u64> {
        Some(DELIVERED.load(Ordering::Relaxed))
    }

    fn dropped(&self) -> u64 {
        // fastrace does not count what it drops.
        0
    }
}
