//! Compile tests of `#[traced]`: the forms that must compile without a warning, and the
//! misuses that must fail with a clear error at the user's tokens.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/ok/*.rs");
    cases.compile_fail("tests/ui/err/*.rs");
}
