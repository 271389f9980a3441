use lstrace::traced;

#[traced(level = "info")]
fn unknown_argument() {}

#[traced(kind = service)]
fn unknown_kind() {}

#[traced(ret(Debug))]
fn unknown_ret_format() -> u32 {
    1
}

fn main() {
    unknown_argument();
    unknown_kind();
    unknown_ret_format();
}
