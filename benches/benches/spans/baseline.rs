//! The same workloads with no tracing at all: what the calls, loops and futures cost by
//! themselves, so that a library's figure minus this one is what its spans add.

use crate::cases::{Case, Library};
use std::hint::black_box;

/// No tracing library.
pub(crate) struct Baseline;

#[inline(never)]
fn child() {
    black_box(());
}

#[inline(never)]
fn wide(n: usize) {
    for _ in 0..n {
        child();
    }
}

#[inline(never)]
fn nested(depth: usize) {
    if depth > 1 {
        nested(black_box(depth - 1));
    }
}

#[inline(never)]
async fn child_async() {
    black_box(());
}

async fn wide_async(n: usize) {
    for _ in 0..n {
        child_async().await;
    }
}

impl Library for Baseline {
    fn supports(&self, case: Case) -> bool {
        // Without a tracer, the two cases that differ only in the tracer's state are one.
        !matches!(case, Case::Unsampled(_) | Case::SampledOut(_))
    }

    fn init(&self, _case: Case, _verify: bool) {}

    fn iteration(&self, case: Case) {
        match case {
            Case::Wide(n) | Case::Tagged(n) | Case::WideTwoThreads(n) | Case::NoTracer(n) => {
                wide(n)
            }
            Case::Deep(depth) => nested(depth),
            Case::Async(n) => futures::executor::block_on(wide_async(n)),
            Case::Unsampled(_) | Case::SampledOut(_) => {}
        }
    }

    fn settle(&self) {}

    fn delivered(&self) -> Option<u64> {
        None
    }

    fn dropped(&self) -> u64 {
        0
    }
}
