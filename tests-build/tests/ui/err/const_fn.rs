use lstrace::traced;

#[traced]
const fn const_fn() -> u32 {
    1
}

fn main() {
    let _ = const_fn();
}
