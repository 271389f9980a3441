//! A task's spans: the per-thread stack of entered spans, and the future that carries a
//! task's frames from poll to poll (whichever thread polls it).

pub(crate) mod future;
pub(crate) mod stack;
