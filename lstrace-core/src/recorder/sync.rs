//! The atomics, cell and lock that the span rings and their registry share between threads:
//! std's, or loom's when built with `--cfg lstrace_loom`, so that the loom tests run the real ring
//! and registry code under every interleaving the model allows.

#[cfg(lstrace_loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};
#[cfg(not(lstrace_loom))]
pub(crate) use std::sync::{
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};

/// Loom's cell, which checks that no access to its value races with another.
#[cfg(lstrace_loom)]
pub(crate) use loom::cell::UnsafeCell;

/// std's `UnsafeCell` with loom's way in (`with_mut`), so that one code path serves both.
#[cfg(not(lstrace_loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(lstrace_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a pointer to the value; what `f` may do through it is the caller's to
    /// make sure of, as with `UnsafeCell::get`.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
