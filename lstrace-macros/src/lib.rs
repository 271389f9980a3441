//! The `#[traced]` attribute of lstrace. Use it through the `lstrace` crate:
//! `#[lstrace::traced]` or `use lstrace::traced;`.
#![deny(missing_docs)]

mod args;
mod expand;

use proc_macro::TokenStream;

/// Traces a function: each call is a span, a child of the span that is current when it
/// starts, which is the current span for the code inside.
///
/// ```
/// use lstrace::traced;
///
/// #[traced]
/// fn load(id: u32) -> u32 {
///     id * 2
/// }
///
/// #[traced(name = "GET /users", kind = server, tags(user = id, cache = "warm"))]
/// fn handle(id: u32) -> u32 {
///     load(id) + 1
/// }
///
/// let capture = lstrace::testing::TestRecorder::install().capture();
/// assert_eq!(capture.in_scope(|| handle(3)), 7);
/// assert_eq!(
///     capture.tree(),
///     "GET /users [cache=warm, span.kind=server, user=3]\n  load\n"
/// );
/// ```
///
/// # Arguments
///
/// All are optional, in any order, each at most once.
///
/// | argument | records |
/// |---|---|
/// | `name = "op"` | the operation name; default: the function's name |
/// | `tags(key = value, ...)` | tags, evaluated when the span starts |
/// | `args(a, ?b, %c)` | the named parameters, as tags under their own names |
/// | `err`, `err(?)` | on `Err(e)`: `error = true` and a log `event = error`, `message = e` |
/// | `ret`, `ret(?)`, `ret(%)` | the returned value, as the tag `return` |
/// | `kind = server` | the `span.kind` tag: `server`, `client`, `producer` or `consumer` |
/// | `follows_from` | references the current span with FOLLOWS_FROM instead of CHILD_OF |
/// | `root` | starts a new trace, whatever the current span is |
///
/// **`name`**: a string literal. The default is the function's name as written: for a method
/// it is the method's name alone (`fetch`, not `Client::fetch`), since the attribute sees the
/// function and not the `impl` around it; write `name = "Client::fetch"` to say more.
///
/// **`tags(key = value, ...)`**: the key is an identifier (`user`) or a string literal
/// (`"http.method"`). The value is any expression and may use the function's parameters: it
/// is evaluated by reference when the span starts (it never moves a parameter), and only
/// when a tracer is recording. Values keep their type: integers, floats, booleans and strings
/// (and references and `Option`s of them) become typed tags through `lstrace::ToTagValue`; write
/// `key = ?value` to record a value's `Debug` text and `key = %value` for its `Display`
/// text. A string, integer, float or boolean literal is recorded as it is, without any
/// conversion or allocation.
///
/// **`args(a, b)`**: records the named parameters as tags named after them, typed as above
/// (`?a` for `Debug`, `%a` for `Display`). Nothing is recorded unless named.
///
/// **`err`**: for a function returning a `Result`: on `Err(e)` the span gets `error = true`
/// and a log with `event = "error"` and `message` = the error's `Display` text (`err(?)`:
/// its `Debug` text).
///
/// **`ret`**: records the returned value as the tag `return`: typed (`ret`), `Debug`
/// (`ret(?)`) or `Display` (`ret(%)`). With `err` too, only an `Ok` value is recorded;
/// without it, the whole value (so for a `Result`, write `ret(?)`).
///
/// **`kind`**, **`follows_from`**, **`root`**: as `SpanBuilder::kind`,
/// `SpanBuilder::follows_from_current` and `SpanBuilder::root`. `root` and
/// `follows_from` cannot be used together.
///
/// ```
/// use lstrace::{traced, TagValue};
///
/// #[derive(Debug)]
/// struct Order {
///     id: u64,
/// }
///
/// #[traced(args(?order, quantity), tags("order.id" = order.id, total = f64::from(quantity) * 2.5), err, ret)]
/// fn price(order: &Order, quantity: u32) -> Result<f64, String> {
///     if quantity == 0 {
///         return Err(format!("order {} is empty", order.id));
///     }
///     Ok(f64::from(quantity) * 2.5)
/// }
///
/// let capture = lstrace::testing::TestRecorder::install().capture();
/// capture.in_scope(|| {
///     assert_eq!(price(&Order { id: 7 }, 2), Ok(5.0));
///     assert!(price(&Order { id: 8 }, 0).is_err());
/// });
/// let spans = capture.spans();
/// assert_eq!(spans[0].tag("return"), Some(&TagValue::Float(5.0)));
/// assert_eq!(spans[0].tag("quantity"), Some(&TagValue::Int(2)));
/// assert_eq!(spans[0].tag("order"), Some(&TagValue::from("Order { id: 7 }".to_owned())));
/// assert_eq!(spans[1].tag("error"), Some(&TagValue::Bool(true)));
/// assert_eq!(
///     spans[1].logs()[0].field("message"),
///     Some(&TagValue::from("order 8 is empty".to_owned()))
/// );
/// ```
///
/// # Functions it traces
///
/// - **Synchronous functions**, methods (`self`, `&self`, `&mut self`), generic functions,
///   `unsafe fn`, functions with `impl Trait` parameters or return types, with `mut`, `_` or
///   destructured parameters. The span is entered for the whole body, however the function
///   returns (`return`, `?`, or a panic, which marks the span `error = true` and goes on).
/// - **`async fn`**, also in traits: the span starts when the future is first polled, is the
///   current span whenever the body runs (across `.await`s, on whatever thread polls it), and
///   finishes when the body completes. A future dropped before completing finishes its span
///   tagged `cancelled = true`.
/// - **Functions returning a boxed future** (`Pin<Box<dyn Future<Output = T> + ...>>`,
///   `BoxFuture`, `LocalBoxFuture`), such as the methods `#[async_trait]` generates: put
///   `#[traced]` under `#[async_trait]`, on the method. The span covers the future's
///   execution. A body ending in `Box::pin(async move { .. })` (as `#[async_trait]` writes
///   it) has that async block instrumented, and its span starts when the future is first
///   polled, as for an `async fn`. Any other body runs inside the span, which then starts
///   when the function is called, and the future it returns is wrapped.
///
/// ```
/// use lstrace::traced;
///
/// #[traced]
/// async fn fetch(key: &str) -> usize {
///     key.len()
/// }
///
/// #[traced(ret)]
/// async fn total(keys: &[&str]) -> usize {
///     let mut sum = 0;
///     for key in keys {
///         sum += fetch(key).await;
///     }
///     sum
/// }
///
/// let capture = lstrace::testing::TestRecorder::install().capture();
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// assert_eq!(runtime.block_on(capture.scope(total(&["a", "bc"]))), 3);
/// assert_eq!(capture.tree(), "total [return=3]\n  fetch\n  fetch\n");
/// ```
///
/// # Cost
///
/// With no tracer installed (or after it stopped), a traced call costs one load and one
/// branch: no name or tag is evaluated. When recording, a span with a literal name and
/// literal tags (up to three) allocates nothing to start.
///
/// # Errors
///
/// Misuse is a compile error at the offending tokens: an unknown or repeated argument, an
/// `args` entry that names no parameter, a malformed tag, a `const fn`, or an item that is
/// not a function.
#[proc_macro_attribute]
pub fn traced(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    let expanded =
        syn::parse::<args::Args>(args).and_then(|args| expand::traced(&args, item.clone()));
    match expanded {
        Ok(tokens) => tokens.into(),
        // The item stays as written, so the error is the only one reported.
        Err(error) => {
            let error = error.into_compile_error();
            quote::quote!(#error #item).into()
        }
    }
}
