//! A real `redis-server` per test (see [`ferrite_testkit::redis`]).

pub use ferrite_testkit::redis::RedisServer;
