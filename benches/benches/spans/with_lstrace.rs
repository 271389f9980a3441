//! lstrace with `#[traced]`, recording into a recorder that discards.

use crate::cases::{Case, Library};
use lstrace::recorder::{self, Recorder, Spans};
use lstrace::sampling::{self, Sampling, TraceIdRatio};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::Duration;

/// Who drains the per-thread rings into the recorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Drain {
    /// A background thread, woken by `Recorder::wake` and every 100 ms, as a reporter does:
    /// the benchmark thread pays only for creating and finishing spans.
    Background,
    /// The benchmark thread, after each root (and when a ring is half full): it pays for
    /// moving every span into the recorder too.
    Inline,
}

/// lstrace with the given way of draining.
pub(crate) struct Lstrace(pub Drain);

static DELIVERED: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static DRAIN_THREAD: OnceLock<Thread> = OnceLock::new();

/// Counts the spans it is given and drops them.
struct Discard(Drain);

impl Recorder for Discard {
    fn record(&self, spans: &mut Spans<'_>) {
        let count = spans.discard() as u64;
        DELIVERED.fetch_add(count, Ordering::Relaxed);
    }

    fn dropped(&self, count: u64) {
        DROPPED.fetch_add(count, Ordering::Relaxed);
    }

    fn wake(&self) {
        match self.0 {
            Drain::Inline => {
                recorder::drain();
            }
            Drain::Background => {
                if let Some(thread) = DRAIN_THREAD.get() {
                    thread.unpark();
                }
            }
        }
    }
}

#[lstrace::traced]
#[inline(never)]
fn child() {
    black_box(());
}

#[lstrace::traced]
#[inline(never)]
fn wide(n: usize) {
    for _ in 0..n {
        child();
    }
}

#[lstrace::traced]
#[inline(never)]
fn nested(depth: usize) {
    if depth > 1 {
        nested(black_box(depth - 1));
    }
}

#[lstrace::traced]
#[inline(never)]
fn deep(depth: usize) {
    nested(depth - 1);
}

#[lstrace::traced]
#[inline(never)]
async fn child_async() {
    black_box(());
}

#[lstrace::traced]
async fn wide_async(n: usize) {
    for _ in 0..n {
        child_async().await;
    }
}

/// A child with three tags and a log, made as the end-to-end runs make their spans.
#[inline(never)]
fn tagged_child(i: usize) {
    let _span = lstrace::span("child")
        .with_tag("component", "bench")
        .with_tag("i", i)
        .with_tag("ok", true)
        .start();
    lstrace::log([("event", "step")]);
    black_box(i);
}

#[lstrace::traced]
#[inline(never)]
fn tagged(n: usize) {
    for i in 0..n {
        tagged_child(i);
    }
}

#[inline(never)]
fn unsampled(n: usize) {
    let _span = lstrace::span("root").root().sampled(false).start();
    for _ in 0..n {
        child();
    }
}

impl Library for Lstrace {
    fn supports(&self, case: Case) -> bool {
        // Without a tracer the drain setting makes no difference.
        self.0 == Drain::Background || case.initialises_tracer()
    }

    fn init(&self, case: Case, _verify: bool) {
        if !case.initialises_tracer() {
            return;
        }
        if self.0 == Drain::Background {
            let thread = std::thread::Builder::new()
                .name("lstrace-drain".into())
                .spawn(|| loop {
                    std::thread::park_timeout(Duration::from_millis(100));
                    recorder::drain();
                })
                .expect("spawning the drain thread");
            let _ = DRAIN_THREAD.set(thread.thread().clone());
        }
        if let Case::SampledOut(_) = case {
            let none = TraceIdRatio::new(0.0).expect("0 is a ratio");
            sampling::set_global(Sampling::parent_based(none));
        }
        if recorder::install(Box::new(Discard(self.0))).is_err() {
            panic!("lstrace: a recorder was installed twice");
        }
    }

    fn iteration(&self, case: Case) {
        match case {
            Case::Wide(n) | Case::WideTwoThreads(n) => wide(n),
            Case::Tagged(n) => tagged(n),
            Case::Deep(depth) => deep(depth),
            Case::Async(n) => futures::executor::block_on(wide_async(n)),
            Case::NoTracer(n) => {
                for _ in 0..n {
                    child();
                }
            }
            Case::Unsampled(n) => unsampled(n),
            Case::SampledOut(n) => wide(n),
        }
        if self.0 == Drain::Inline {
            recorder::drain();
        }
    }

    fn settle(&self) {
        recorder::drain();
    }

    fn delivered(&self) -> Option<u64> {
        Some(DELIVERED.load(Ordering::Relaxed))
    }

    fn dropped(&self) -> u64 {
        DROPPED.load(Ordering::Relaxed)
    }
}
