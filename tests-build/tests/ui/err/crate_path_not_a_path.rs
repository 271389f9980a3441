#[lstrace::traced(crate = "lstrace")]
fn quoted() {}

#[lstrace::traced(crate)]
fn without_value() {}

fn main() {}
