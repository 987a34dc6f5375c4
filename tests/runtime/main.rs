//! The session manager end to end, in process: memory stores, real local sandboxes and
//! the scripted agent. Fast, deterministic, and every lifecycle path.

mod budgets;
mod controlled_store;
mod failures;
mod forks;
mod harness;
mod hostile;
mod lifecycle;
mod metrics;
mod outage;
mod principals;
mod requests;
mod warm_pool;
