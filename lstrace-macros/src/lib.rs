//! The `#[traced]` attribute of lstrace. Use it through the `lstrace` crate:
//! `#[lstrace::traced]` or `use lstrace::traced;`; its documentation is there.
#![deny(missing_docs)]

mod args;
mod expand;

use proc_macro::TokenStream;

/// Traces a function: each call is a span. Documented, with examples, as `lstrace::traced`
/// (the examples run as `lstrace`'s doctests, since they need the `lstrace` crate).
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
