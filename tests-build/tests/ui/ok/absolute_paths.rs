//! The expansion names everything by absolute path, so local items that share the names it
//! uses change nothing; the attribute works by path, without an import.
#![deny(warnings)]
#![allow(dead_code)]

mod collector {
    pub fn is_enabled() -> bool {
        panic!("the local `collector` must not be called")
    }
}

mod lstrace_names {}

struct Span;
struct EnteredSpan;
struct Instrumented;
type Result<T> = std::result::Result<T, String>;

fn span(_: &str) -> Span {
    panic!("the local `span` must not be called")
}

#[lstrace::traced(err, ret, tags(n = x))]
fn by_path(x: u32) -> Result<u32> {
    Ok(x)
}

#[lstrace::traced]
async fn async_by_path(x: u32) -> Result<u32> {
    Ok(x)
}

fn main() {
    assert_eq!(by_path(2), Ok(2));
    drop(async_by_path(1));
}
