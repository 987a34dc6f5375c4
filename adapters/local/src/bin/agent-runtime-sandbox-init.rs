//! The sandbox init as a program of its own, for tests of this crate and for hosts that
//! place it apart from the runtime. The runtime itself runs it as `agent-runtime
//! sandbox-init`.

fn main() {
    std::process::exit(agent_runtime_local::sandbox_init(std::env::args().skip(1)));
}
