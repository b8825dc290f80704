//! A PostgreSQL cluster of one test's own, for tests that stop and start it.

pub use ferrite_testkit::PrivatePostgres;
