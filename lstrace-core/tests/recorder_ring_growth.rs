//! A thread's ring grows instead of dropping spans while it can. The recorder is global, so
//! this binary holds one test.

use lstrace_core::recorder::Spans;
use lstrace_core::{recorder, span, Recorder};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counts what a drain hands it; nothing drains unless the test calls `drain`.
struct Counting {
    recorded: AtomicU64,
    dropped: AtomicU64,
}

static COUNTING: Counting = Counting {
    recorded: AtomicU64::new(0),
    dropped: AtomicU64::new(0),
};

impl Recorder for &'static Counting {
    fn record(&self, spans: &mut Spans<'_>) {
        self.recorded
            .fetch_add(spans.discard() as u64, Ordering::SeqCst);
    }

    fn dropped(&self, count: u64) {
        self.dropped.fetch_add(count, Ordering::SeqCst);
    }

    fn wake(&self) {}
}

/// A thread's first ring holds 512 spans (`RING_CAPACITY_START`).
const FIRST_RING: u64 = 512;

#[test]
fn the_span_that_finds_the_first_ring_full_goes_into_a_bigger_one() {
    recorder::install(Box::new(&COUNTING)).unwrap();
    let made = std::thread::spawn(|| {
        let mut made = 0;
        let mut make = |n: u64| {
            for _ in 0..n {
                drop(span("s").start());
                made += 1;
            }
        };
        // Each half-ring wake comes after a pause, so it finds the thread quiet: the ring
        // keeps its size until a span finds it full.
        for _ in 0..2 {
            make(FIRST_RING / 2 - 1);
            std::thread::sleep(Duration::from_millis(5));
            make(1);
        }
        // Nobody drains: this one finds the ring full.
        make(1);
        made
    })
    .join()
    .unwrap();
    assert_eq!(made, FIRST_RING + 1);
    recorder::drain();
    assert_eq!(COUNTING.dropped.load(Ordering::SeqCst), 0);
    assert_eq!(COUNTING.recorded.load(Ordering::SeqCst), made);
}
