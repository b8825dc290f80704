//! A real `redis-server` per test (see [`ferrite_testkit::redis`]).

#[allow(unused_imports)] // each test file uses a different part of the fixtures
pub use ferrite_testkit::redis::RedisServer;
