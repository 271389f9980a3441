//! lstrace: distributed tracing for LightStep-compatible backends.
#![deny(missing_docs)]

pub use lstrace_core::*;
pub use lstrace_macros::traced;

/// What `#[traced]` expands to. Not a public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    use lstrace_core::TagValue;
    use std::fmt::{Debug, Display};

    /// The `Debug` text of a value, for `?value`.
    #[must_use]
    pub fn debug<T: Debug + ?Sized>(value: &T) -> TagValue {
        TagValue::from(format!("{value:?}"))
    }

    /// The two sides of a function's `Result`, for `err`.
    #[diagnostic::on_unimplemented(
        message = "`#[traced(err)]` needs a function that returns a `Result`, not `{Self}`",
        label = "the function's value is not a `Result`"
    )]
    pub trait TracedResult {
        /// The `Ok` type.
        type Value;
        /// The `Err` type.
        type Error;
        /// The value or the error, by reference.
        ///
        /// # Errors
        /// The function's error.
        fn as_result(&self) -> Result<&Self::Value, &Self::Error>;
    }

    impl<T, E> TracedResult for Result<T, E> {
        type Value = T;
        type Error = E;
        fn as_result(&self) -> Result<&T, &E> {
            self.as_ref()
        }
    }

    /// The `Display` text of a value, for `%value`.
    #[must_use]
    pub fn display<T: Display + ?Sized>(value: &T) -> TagValue {
        TagValue::from(value.to_string())
    }
}
