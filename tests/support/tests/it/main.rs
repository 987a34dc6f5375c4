//! Integration tests of the testkit, in one binary: the scripted agent driven as a child
//! process, the fake Messages API over HTTP, and the real Claude Code CLI against the
//! fake API when `AGENT_RUNTIME_TEST_CLAUDE` names one.

mod common;
mod fake_api;
mod real_claude;
mod scripted_agent;
mod scripted_resume;
mod scripted_stamp;
