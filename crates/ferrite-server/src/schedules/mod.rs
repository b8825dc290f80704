//! Schedules: cron expressions of a route, each tick of which enqueues one
//! async call (docs/schedules.md). [`timing`] says when a schedule ticks;
//! [`scheduler`] is the loop every node runs to enqueue due ticks, exactly
//! once across the nodes sharing a store.

pub mod scheduler;
pub mod timing;
