//! Integration tests of the Convex adapters, in one binary: the contract suites and the
//! client's behaviour against the testkit's fake Convex deployment, the sync between the
//! shipped TypeScript functions and the defaults, and the TypeScript type check.

mod client;
mod contract;
mod functions;
mod typescript;

use std::time::Duration;

use agent_runtime_convex::{ConvexConfig, Secret};
use agent_runtime_testkit::fake_convex::FakeConvex;

/// A fake deployment and a config pointing at it, with short waits so retries are quick.
async fn fake() -> (FakeConvex, ConvexConfig) {
    let fake = FakeConvex::start().await;
    let mut config = ConvexConfig::new(fake.base_url(), Secret::new(fake.deploy_key()));
    config.retry_backoff = Duration::from_millis(5);
    config.timeout = Duration::from_secs(10);
    (fake, config)
}
