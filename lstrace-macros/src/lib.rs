//! The `#[traced]` attribute of lstrace.
#![deny(missing_docs)]

use proc_macro::TokenStream;

/// Traces a function.
#[proc_macro_attribute]
pub fn traced(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
