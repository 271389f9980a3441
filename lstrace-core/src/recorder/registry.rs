//! The registry of rings: every thread's ring consumer, kept for the drain.

use super::ring::{self, Consumer};
use super::sync::{AtomicBool, Mutex, MutexGuard, Ordering};
use crate::record::SpanRecord;
use std::sync::{LazyLock, PoisonError};

/// The consumers of every thread's ring, for the drain to take their spans.
///
/// A thread registers a ring at its first span (and when its ring grows) and keeps its
/// producer; the registry keeps the consumer, used only under the drain's lock, and forgets
/// it once the producer is gone and nothing is left to take or count.
pub(crate) struct Registry<T> {
    /// Every ring a drain has taken in. Held for a whole drain, which makes drains take turns
    /// (each ring has one consumer, and it lives here).
    taken_in: Mutex<Vec<Entry<T>>>,
    /// Rings registered since the last drain took them in. Held only for moments: a thread
    /// registering its ring must never wait for a drain, which may spend a while in the
    /// recorder.
    new: Mutex<Vec<Entry<T>>>,
    /// True when `new` may hold rings: saves most drains a lock.
    new_waiting: AtomicBool,
}

struct Entry<T> {
    consumer: Consumer<T>,
    /// The ring's drop count when last reported.
    dropped_seen: u64,
}

fn lock<T>(list: &Mutex<Vec<Entry<T>>>) -> MutexGuard<'_, Vec<Entry<T>>> {
    // A panic while holding the lock (in a recorder) cannot leave the list inconsistent.
    list.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T> Registry<T> {
    pub(crate) fn new() -> Self {
        Registry {
            taken_in: Mutex::new(Vec::new()),
            new: Mutex::new(Vec::new()),
            new_waiting: AtomicBool::new(false),
        }
    }

    /// Makes a ring of `capacity`, keeps its consumer, and returns its producer.
    pub(crate) fn register(&self, capacity: usize) -> ring::Producer<T> {
        let (producer, consumer) = ring::ring(capacity);
        lock(&self.new).push(Entry {
            consumer,
            dropped_seen: 0,
        });
        self.new_waiting.store(true, Ordering::Release);
        producer
    }

    /// Runs `take` on the consumer of every ring, one drain at a time, then forgets the rings
    /// whose producer is gone once nothing is left in them to take or count. Returns how many
    /// items the producers dropped since the last drain.
    pub(crate) fn drain(&self, mut take: impl FnMut(&mut Consumer<T>)) -> u64 {
        let mut entries = lock(&self.taken_in);
        // A compare-exchange where a swap would do: loom models a swap that races with a
        // store wrongly (loom issue 254), and this one costs the same.
        if self
            .new_waiting
            .compare_exchange(true, false, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            entries.append(&mut lock(&self.new));
        }
        let mut dropped = 0;
        for entry in entries.iter_mut() {
            let total_dropped = entry.consumer.dropped();
            dropped += total_dropped - entry.dropped_seen;
            entry.dropped_seen = total_dropped;
            take(&mut entry.consumer);
        }
        // Closed first: what the length and the drop count say after that is final.
        entries.retain(|e| {
            !(e.consumer.is_closed()
                && e.consumer.len() == 0
                && e.consumer.dropped() == e.dropped_seen)
        });
        dropped
    }

    /// Items waiting in the rings.
    pub(crate) fn pending(&self) -> usize {
        let taken_in: usize = lock(&self.taken_in).iter().map(|e| e.consumer.len()).sum();
        taken_in
            + lock(&self.new)
                .iter()
                .map(|e| e.consumer.len())
                .sum::<usize>()
    }
}

/// The process's rings of finished spans.
pub(super) static REGISTRY: LazyLock<Registry<SpanRecord>> = LazyLock::new(Registry::new);

/// The registry under loom: a thread registers its ring, pushes, and exits while drains run.
#[cfg(all(test, lstrace_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    #[test]
    fn loom_registry_takes_what_an_exited_thread_left_and_forgets_its_ring() {
        loom::model(|| {
            let registry = Arc::new(Registry::new());
            let producing = thread::spawn({
                let registry = Arc::clone(&registry);
                move || {
                    let mut producer = registry.register(2);
                    let mut refused = 0u64;
                    for i in 0..3u64 {
                        if producer.push(i).is_err() {
                            producer.count_dropped();
                            refused += 1;
                        }
                    }
                    refused
                    // The thread exits: its producer drops and the ring closes.
                }
            });
            let mut taken = Vec::new();
            let mut dropped = registry.drain(|consumer| consumer.drain(|x| taken.push(x)));
            let refused = producing.join().unwrap();
            dropped += registry.drain(|consumer| consumer.drain(|x| taken.push(x)));
            // Whatever the interleaving, each item made was taken (in order) or counted as
            // dropped, once, and the closed ring is gone.
            assert_eq!(dropped, refused);
            assert_eq!(taken.len() as u64 + dropped, 3);
            assert!(taken.windows(2).all(|pair| pair[0] < pair[1]));
            assert_eq!(registry.pending(), 0);
            assert!(lock(&registry.taken_in).is_empty() && lock(&registry.new).is_empty());
        });
    }
}
