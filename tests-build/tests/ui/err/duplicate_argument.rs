use lstrace::traced;

#[traced(name = "a", err, name = "b")]
fn duplicate_argument() -> Result<(), String> {
    Ok(())
}

#[traced(tags(user = 1), args(user))]
fn duplicate_tag(user: u32) {
    let _ = user;
}

#[traced(root, follows_from)]
fn root_and_follows_from() {}

fn main() {
    let _ = duplicate_argument();
    duplicate_tag(1);
    root_and_follows_from();
}
