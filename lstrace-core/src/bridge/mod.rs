//! Bridges from other instrumentation ecosystems into lstrace traces: `tracing` spans and
//! events (feature `tracing`) and `log` records (feature `log`).

#[cfg(feature = "log")]
pub mod log;
#[cfg(feature = "tracing")]
pub mod tracing;
