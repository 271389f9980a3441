//! Integration tests of lstrace: see the `tests/` folder.
