use lstrace::traced;

#[traced(args(id, usr))]
fn args_unknown_parameter(id: u32, (user, _): (String, u8)) {
    let _ = (id, user);
}

fn main() {
    args_unknown_parameter(1, (String::new(), 0));
}
