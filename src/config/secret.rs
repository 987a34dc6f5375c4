//! A string that must not end up in logs: the adapter API's [`Secret`].

pub use agent_runtime_api::Secret;
