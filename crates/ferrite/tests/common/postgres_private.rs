//! A PostgreSQL cluster of one test's own, for tests that stop and start it.

#[allow(unused_imports)] // each test file uses a different part of the fixtures
pub use ferrite_testkit::PrivatePostgres;
