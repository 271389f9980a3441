//! Every form of traced function, in a crate that denies every warning. (rustc's lints are
//! checked here; clippy's pedantic set is checked on the same forms by the `lstrace-tests`
//! crate, whose test files deny it too.)
#![deny(warnings, clippy::all, clippy::pedantic, unsafe_op_in_unsafe_fn)]

use lstrace::traced;
use std::future::Future;
use std::pin::Pin;

#[derive(Debug)]
struct Item {
    id: u64,
}

#[traced]
fn plain() {}

#[traced(
    name = "all arguments",
    tags(int = 1, float = 2.5, flag = false, text = "t", "dotted.key" = item.id, d = ?item, s = %id),
    args(id, ?item),
    err,
    ret,
    kind = producer,
    follows_from
)]
fn all_arguments(id: u64, item: &Item) -> Result<u64, String> {
    if id == 0 {
        return Err("zero".to_owned());
    }
    let half = id.checked_div(2).ok_or("no half")?;
    Ok(half + item.id)
}

#[traced(root, err(?), ret(%))]
fn root_display(x: u8) -> Result<u8, std::num::TryFromIntError> {
    u8::try_from(u16::from(x) + 1)
}

struct Holder {
    value: u32,
}

impl Holder {
    #[traced(tags(value = self.value))]
    fn by_ref(&self) -> u32 {
        self.value
    }

    #[traced(ret)]
    fn by_mut(&mut self) -> u32 {
        self.value += 1;
        self.value
    }

    #[traced]
    fn by_value(self) -> u32 {
        self.value
    }

    #[traced(args(n))]
    async fn async_method(&self, n: u32) -> u32 {
        self.value + n
    }
}

#[traced(ret(?))]
fn generic<T, U>(t: T, u: impl Into<U>) -> (T, U)
where
    T: std::fmt::Debug + Clone,
    U: std::fmt::Debug,
{
    (t.clone(), u.into())
}

#[traced]
fn returns_impl_trait(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

/// The `u32` at `pointer`: an `unsafe fn` stays `unsafe` under `#[traced]`.
///
/// # Safety
///
/// `pointer` must be non-null, aligned and point to a `u32` that is alive for the call.
#[traced(ret)]
unsafe fn read(pointer: *const u32) -> u32 {
    // SAFETY: the caller passes a valid pointer.
    unsafe { *pointer }
}

#[traced]
#[allow(clippy::needless_pass_by_value)]
fn patterns(mut a: u32, _: u32, (b, _c): (u32, u32), Item { id }: Item) -> u64 {
    a += b;
    u64::from(a) + id
}

#[traced(err)]
async fn async_fn(x: &str) -> Result<u32, std::num::ParseIntError> {
    let n: u32 = x.parse()?;
    Ok(n)
}

#[traced(ret)]
fn boxed(n: u32) -> Pin<Box<dyn Future<Output = u32> + Send>> {
    Box::pin(async move { n })
}

trait Service {
    #[traced]
    async fn call(&self) -> u32 {
        1
    }
}

impl Service for Holder {}

fn main() {
    plain();
    let item = Item { id: 3 };
    assert_eq!(all_arguments(4, &item), Ok(5));
    assert!(root_display(255).is_err());
    let mut holder = Holder { value: 1 };
    assert_eq!(holder.by_ref(), 1);
    assert_eq!(holder.by_mut(), 2);
    drop(holder.async_method(1));
    drop(holder.call());
    assert_eq!(holder.by_value(), 2);
    assert_eq!(generic::<u8, u16>(1, 2u8), (1, 2));
    assert_eq!(returns_impl_trait(3).count(), 3);
    let value = 5;
    // SAFETY: `value` is alive.
    assert_eq!(unsafe { read(std::ptr::addr_of!(value)) }, 5);
    assert_eq!(patterns(1, 0, (2, 0), Item { id: 4 }), 7);
    drop(async_fn("1"));
    drop(boxed(1));
}
