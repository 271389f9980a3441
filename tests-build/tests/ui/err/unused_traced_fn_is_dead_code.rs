#![deny(dead_code)]

use lstrace::traced;

#[traced]
fn never_called() {}

#[traced(err, ret)]
fn never_called_either() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
