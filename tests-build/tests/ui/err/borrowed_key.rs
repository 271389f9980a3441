//! A key is a name: a string literal or a `String`. A key borrowed for less than `'static`
//! is refused (pass `&key` or the `String` itself), so that literal keys are never copied.

fn main() {
    let key = String::from("dyn.key");
    lstrace::set_tag(key.as_str(), 1);
}
