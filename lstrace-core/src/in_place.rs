//! Writing a struct field by field through a raw pointer, with the compiler checking that no
//! field is left out.
//!
//! The hot path writes span records and frames in place (straight into a ring slot or the
//! stack's memory) rather than building them and copying. [`write_fields!`] names every field
//! of the struct in a pattern that must be exhaustive, so a field added to the struct is a
//! compile error at each such write until the write gives it a value; [`owns_nothing`] checks
//! that a field forgotten when its struct is moved out piecemeal has nothing to drop.

/// Writes each field of the struct that `$dst` (a `*mut $ty`) points to, in place, and fails
/// to compile unless every field of `$ty` is named.
///
/// `field: value` writes `value`; `@field => |place| body` runs `body` with `place`, the
/// field's `*mut`, for a field written some other way (a tag list moved by
/// `TagList::move_to`, a nested struct written with `write_fields!` itself).
///
/// Must be used inside an `unsafe` block whose caller guarantees that `$dst` is valid for
/// writes of a `$ty` and that overwriting it without dropping the old value is fine.
macro_rules! write_fields {
    ($dst:expr => $ty:ident {
        $($field:ident: $value:expr,)*
        $(@$placed:ident => |$place:ident| $body:expr,)*
    }) => {{
        let dst: *mut $ty = $dst;
        // Never called: the pattern, which names every field and has no `..`, is what checks
        // that this write covers the struct.
        let _every_field_is_written = |whole: &$ty| {
            let $ty { $($field: _,)* $($placed: _,)* } = whole;
        };
        $(::std::ptr::addr_of_mut!((*dst).$field).write($value);)*
        $({
            let $place = ::std::ptr::addr_of_mut!((*dst).$placed);
            $body;
        })*
    }};
}
pub(crate) use write_fields;

/// Checks, when it compiles, that a value of type `T` owns nothing (needs no drop): a field
/// left behind when the rest of its struct moves out is then forgotten without a leak.
#[inline(always)]
pub(crate) fn owns_nothing<T>(_: &T) {
    const {
        assert!(
            !std::mem::needs_drop::<T>(),
            "this field must not need a drop"
        )
    }
}

/// Moves a value from `src` to `dst`, writing `empty()` there instead when `src` holds
/// nothing (`is_empty`): most spans' tag and log lists are empty, and writing a new one is
/// cheaper than copying one whole with its inline room. (A function that returned the value
/// instead would let the compiler merge the two cases into a full copy.)
///
/// # Safety
/// `src` points to a valid value that the caller gives up (it must not use or drop it after
/// this); `dst` to memory for a `T`, valid for writes and apart from `src`, which is
/// overwritten without being dropped. A value for which `is_empty` holds must own nothing:
/// it is neither moved nor dropped.
#[inline(always)]
pub(crate) unsafe fn move_unless_empty<T>(
    src: *const T,
    dst: *mut T,
    is_empty: impl FnOnce(&T) -> bool,
    empty: impl FnOnce() -> T,
) {
    // SAFETY: as the caller promises; an empty value owns nothing, so not reading it is fine.
    unsafe {
        if is_empty(&*src) {
            dst.write(empty());
        } else {
            std::ptr::copy_nonoverlapping(src, dst, 1);
        }
    }
}
