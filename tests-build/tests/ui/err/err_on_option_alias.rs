// Behind an alias the macro cannot see the `Option`: the trait bound's message says it.
use lstrace::traced;

type Lookup = Option<u32>;

#[traced(err)]
fn find(id: u32) -> Lookup {
    id.checked_sub(1)
}

fn main() {
    let _ = find(1);
}
