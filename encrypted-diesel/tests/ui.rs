//! Compile-fail tests: each file under `tests/ui/` must fail with the message in its `.stderr`.
//!
//! Run with `TRYBUILD=overwrite` to accept new messages. The messages list the impls enabled
//! by features, so the test runs with every backend feature (as CI does).
#![cfg(all(
    feature = "sqlite",
    feature = "postgres",
    feature = "mysql",
    feature = "async"
))]

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
