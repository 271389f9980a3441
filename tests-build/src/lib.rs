//! Compile tests of `#[traced]`, run by trybuild (`tests/ui.rs`): `tests/ui/ok` holds the
//! forms that must compile without a warning, `tests/ui/err` the misuses that must fail with
//! a clear error at the user's tokens. A crate of their own, as tokio's `tests-build`, so that
//! trybuild builds them against lstrace without its reporter.
