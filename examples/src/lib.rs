//! Runnable examples of lstrace: see the `examples/` folder.
