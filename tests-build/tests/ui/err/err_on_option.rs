use lstrace::traced;

#[traced(err)]
fn find(id: u32) -> Option<u32> {
    id.checked_sub(1)
}

fn main() {
    let _ = find(1);
}
