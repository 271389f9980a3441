use lstrace::traced;

#[traced(tags(unsigned = -1u32))]
fn negative_unsigned() {}

fn main() {
    negative_unsigned();
}
