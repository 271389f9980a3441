use lstrace::traced;

#[traced(err)]
fn find(id: u32) -> Option<u32> {
    id.checked_sub(1)
}

#[traced(err(?), ret)]
async fn find_async(id: u32) -> std::option::Option<u32> {
    id.checked_sub(1)
}

fn main() {
    let _ = find(1);
    drop(find_async(1));
}
