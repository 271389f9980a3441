use lstrace::traced;

#[traced(tags(user))]
fn missing_value(user: u32) {
    let _ = user;
}

#[traced(tags(1 = 2))]
fn bad_key() {}

#[traced(tags(a = ))]
fn empty_value() {}

#[traced(tags = "a")]
fn not_a_list() {}

#[traced(name = op)]
fn name_not_a_string() {}

fn main() {
    missing_value(1);
    bad_key();
    empty_value();
    not_a_list();
    name_not_a_string();
}
