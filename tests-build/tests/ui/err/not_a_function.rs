use lstrace::traced;

#[traced]
struct NotAFunction {
    field: u32,
}

trait Service {
    #[traced]
    fn without_body(&self);
}

fn main() {
    let _ = NotAFunction { field: 1 }.field;
}
