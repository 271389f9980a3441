//! `use lstrace::*;` next to the crates lstrace bridges: with every feature on (the bridges
//! included), `tracing` and `log` still name those crates (no E0659), and `log` as a value
//! is lstrace's function that logs on the current span.
#![deny(warnings)]

use lstrace::*;
use tracing::info;

#[traced]
fn load(rows: u32) -> u32 {
    tracing::info!(rows, "loaded");
    info!("done");
    log::warn!("{rows} rows");
    log([("event", "loaded")]);
    rows
}

fn main() {
    let _ = load(3);
}
