use lstrace::traced;

#[traced(tags(small = 300u8))]
fn too_big_for_its_suffix() {}

fn main() {
    too_big_for_its_suffix();
}
