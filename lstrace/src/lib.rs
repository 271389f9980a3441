//! lstrace: distributed tracing for LightStep-compatible backends.
#![deny(missing_docs)]

pub use lstrace_core::*;
pub use lstrace_macros::traced;
