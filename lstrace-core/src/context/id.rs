//! Trace and span identifiers, and the per-thread generator that makes them.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::num::NonZeroU64;

/// A 128-bit trace identifier.
///
/// Reports to a LightStep collector carry the low 64 bits ([`TraceId::low`]); the full
/// 128 bits stay in the in-process context so that B3 and W3C hops keep the id whole.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub(crate) u128);

impl TraceId {
    /// The trace id of this 128-bit value (a context extracted from a carrier never has
    /// zero: no propagation format allows it).
    #[must_use]
    pub const fn from_u128(value: u128) -> Self {
        TraceId(value)
    }

    /// The 128-bit value.
    #[must_use]
    pub const fn to_u128(self) -> u128 {
        self.0
    }

    /// A new random trace id: the high 64 bits are random too, as W3C trace context asks.
    #[must_use]
    pub fn random() -> Self {
        TraceId((u128::from(random_u64()) << 64) | u128::from(random_u64()))
    }

    /// The low 64 bits, which is what LightStep reports and headers carry.
    #[must_use]
    pub fn low(self) -> u64 {
        self.0 as u64
    }

    /// The high 64 bits (zero for ids that came from a 64-bit-only format).
    #[must_use]
    pub fn high(self) -> u64 {
        (self.0 >> 64) as u64
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({:032x})", self.0)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// A non-zero 64-bit span identifier.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub(crate) NonZeroU64);

impl SpanId {
    /// A new random, non-zero span id.
    #[must_use]
    pub fn random() -> Self {
        loop {
            if let Some(id) = NonZeroU64::new(random_u64()) {
                return SpanId(id);
            }
        }
    }

    /// Makes a span id from its numeric value; `None` for zero, which no format allows.
    #[must_use]
    pub fn new(value: u64) -> Option<Self> {
        NonZeroU64::new(value).map(SpanId)
    }

    /// The numeric value.
    #[must_use]
    pub fn get(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({:016x})", self.0)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

thread_local! {
    // Zero means "not seeded yet"; seeding needs no syscall (RandomState's keys are
    // per-process random plus a per-instance counter).
    static RNG_STATE: Cell<u64> = const { Cell::new(0) };
}

#[cold]
fn seed() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    // Every RandomState has fresh keys; a stack address adds per-thread entropy for free.
    let marker = 0u8;
    hasher.write_usize(std::ptr::addr_of!(marker) as usize);
    hasher.finish() | 1
}

/// A fast per-thread pseudo-random `u64` (wyrand): ids need to be unique, not secret.
#[must_use]
pub(crate) fn random_u64() -> u64 {
    RNG_STATE
        .try_with(|state| {
            let mut s = state.get();
            if s == 0 {
                s = seed();
            }
            s = s.wrapping_add(0xa076_1d64_78bd_642f);
            state.set(s);
            let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
            (t >> 64) as u64 ^ t as u64
        })
        // During thread teardown the thread-local is gone: fall back to a fresh seed.
        .unwrap_or_else(|_| seed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn span_ids_are_non_zero_and_distinct() {
        let ids: HashSet<u64> = (0..10_000).map(|_| SpanId::random().get()).collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn threads_draw_different_ids() {
        let a = std::thread::spawn(random_u64).join().unwrap();
        let b = std::thread::spawn(random_u64).join().unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn trace_id_halves() {
        let id = TraceId(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
        assert_eq!(id.high(), 0x0123_4567_89ab_cdef);
        assert_eq!(id.low(), 0xfedc_ba98_7654_3210);
        assert_eq!(id.to_string(), "0123456789abcdeffedcba9876543210");
        assert_eq!(SpanId::new(0), None);
    }
}
