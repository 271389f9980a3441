//! Measuring one case of one library: warm up, pick an iteration count, take timed samples.
//!
//! Each sample times a run of whole iterations (a root and its children) on every worker
//! thread at once; between samples the library's pipeline is settled (everything pending is
//! flushed to its discarding sink), so that each sample starts empty and the process CPU time
//! of a sample includes the background work its spans caused.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long and how often to measure.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    /// Iterations before measuring, per worker, until this much time has passed (at least one).
    pub warmup: Duration,
    /// Timed samples.
    pub samples: usize,
    /// The time one sample should last; the iteration count per sample is picked from the
    /// warmup's rate to match it.
    pub sample_time: Duration,
}

impl Plan {
    /// One iteration, one sample: checks that a case runs, measures nothing meaningful.
    pub(crate) const QUICK: Plan = Plan {
        warmup: Duration::ZERO,
        samples: 1,
        sample_time: Duration::ZERO,
    };
}

/// What the samples found, per span.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Wall-clock nanoseconds per span on the instrumented threads (the slowest worker of each
    /// sample), one per sample.
    pub wall_ns: Vec<f64>,
    /// Process CPU nanoseconds per span, all threads (background collectors, flushes), one
    /// per sample; empty where the platform gives no process CPU clock.
    pub cpu_ns: Vec<f64>,
    /// Iterations run in all, warmup included, summed over workers.
    pub iterations: u64,
}

/// Runs `iteration` on `threads` workers at once, as `plan` says; `settle` runs on the
/// coordinating thread after the warmup and after each sample. `spans_per_iteration` is the
/// divisor for the per-span figures (per worker).
pub(crate) fn measure(
    plan: Plan,
    threads: usize,
    spans_per_iteration: u64,
    iteration: &(dyn Fn() + Sync),
    settle: &dyn Fn(),
) -> Outcome {
    let barrier = Barrier::new(threads + 1);
    let per_sample = AtomicU64::new(0);
    let warmup_rates: Mutex<Vec<(u64, Duration)>> = Mutex::new(Vec::new());
    let sample_times: Mutex<Vec<Vec<Duration>>> = Mutex::new(vec![Vec::new(); plan.samples]);
    let mut outcome = Outcome {
        wall_ns: Vec::with_capacity(plan.samples),
        cpu_ns: Vec::with_capacity(plan.samples),
        iterations: 0,
    };
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                barrier.wait();
                let start = Instant::now();
                let mut count = 0u64;
                while count == 0 || start.elapsed() < plan.warmup {
                    iteration();
                    count += 1;
                }
                let elapsed = start.elapsed();
                warmup_rates
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((count, elapsed));
                barrier.wait();
                for sample in 0..plan.samples {
                    barrier.wait();
                    let n = per_sample.load(Ordering::Acquire);
                    let start = Instant::now();
                    for _ in 0..n {
                        iteration();
                    }
                    let elapsed = start.elapsed();
                    sample_times.lock().unwrap_or_else(PoisonError::into_inner)[sample]
                        .push(elapsed);
                    barrier.wait();
                }
            });
        }
        barrier.wait();
        barrier.wait();
        settle();
        let rates = warmup_rates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        outcome.iterations = rates.iter().map(|(count, _)| count).sum();
        let (count, elapsed) = rates[0];
        let per_iteration = elapsed.as_secs_f64() / count as f64;
        let n = ((plan.sample_time.as_secs_f64() / per_iteration).ceil() as u64).max(1);
        per_sample.store(n, Ordering::Release);
        let spans = (n * spans_per_iteration) as f64;
        for sample in 0..plan.samples {
            let cpu_before = process_cpu_time();
            barrier.wait();
            barrier.wait();
            settle();
            let cpu_after = process_cpu_time();
            outcome.iterations += n * threads as u64;
            let slowest = sample_times.lock().unwrap_or_else(PoisonError::into_inner)[sample]
                .iter()
                .max()
                .copied()
                .unwrap_or_default();
            outcome.wall_ns.push(slowest.as_nanos() as f64 / spans);
            if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
                // CPU time of every thread, shared out over every worker's spans.
                let total_spans = spans * threads as f64;
                outcome
                    .cpu_ns
                    .push(after.saturating_sub(before).as_nanos() as f64 / total_spans);
            }
        }
    });
    outcome
}

/// The median of a set of samples (NaN for none).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// CPU time used so far by every thread of this process.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn process_cpu_time() -> Option<Duration> {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
    }
    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    let mut time = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec (two 64-bit fields on 64-bit Linux) to a
    // valid pointer and reads nothing else.
    let rc = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut time) };
    (rc == 0).then(|| Duration::new(time.tv_sec as u64, time.tv_nsec as u32))
}

/// CPU time used so far by every thread of this process (not measured on this platform).
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn process_cpu_time() -> Option<Duration> {
    None
}
