use lstrace::traced;

struct Opaque;

#[traced(tags(opaque = opaque))]
fn typed_tag_of_a_struct(opaque: &Opaque) {
    let _ = opaque;
}

#[traced(args(?opaque))]
fn debug_of_a_type_without_debug(opaque: &Opaque) {
    let _ = opaque;
}

#[traced(ret)]
fn typed_ret_of_a_result() -> Result<u32, String> {
    Ok(1)
}

#[traced(err)]
fn err_without_a_result() -> u32 {
    1
}

fn main() {
    typed_tag_of_a_struct(&Opaque);
    debug_of_a_type_without_debug(&Opaque);
    let _ = typed_ret_of_a_result();
    let _ = err_without_a_result();
}
