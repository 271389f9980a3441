use lstrace::traced;

#[derive(Debug)]
enum LoadError {
    Missing,
}

#[traced(err)]
fn load(id: u32) -> Result<u32, LoadError> {
    if id == 0 {
        return Err(LoadError::Missing);
    }
    Ok(id)
}

#[traced(err)]
async fn load_async(id: u32) -> Result<u32, LoadError> {
    load(id)
}

fn main() {
    let _ = load(1);
    drop(load_async(1));
}
