//! Bridges from other instrumentation ecosystems into lstrace traces: `tracing` spans and
//! events (`bridge::tracing`, feature `tracing`) and `log` records (`bridge::log`, feature
//! `log`).
//!
//! They live here, not at the crate's root, because each is named like the crate it bridges:
//! a glob import of the crate's root next to `tracing::info!` or `log::warn!` stays
//! unambiguous, and the root's `log` is only the function that logs on the current span.

#[cfg(feature = "log")]
#[cfg_attr(docsrs, doc(cfg(feature = "log")))]
pub mod log;
#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub mod tracing;
