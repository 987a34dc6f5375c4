//! Type-checks the shipped Convex functions with the pinned TypeScript compiler.
//!
//! Runs when `AGENT_RUNTIME_TEST_NPM=1` or `CI` is set, and then fails if node or npm is
//! missing; elsewhere it is skipped with a message. Installs the pinned packages with
//! `npm ci` first when they are missing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn wanted() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0");
    set("AGENT_RUNTIME_TEST_NPM") || set("CI")
}

fn run(dir: &Path, program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {program} (is node/npm installed?): {err}"));
    assert!(
        output.status.success(),
        "{program} {} failed in {}:\n{}{}",
        args.join(" "),
        dir.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn convex_functions_type_check() {
    if !wanted() {
        eprintln!("skipped: set AGENT_RUNTIME_TEST_NPM=1 (or CI) to type-check convex/ with tsc");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("convex");
    run(&dir, "node", &["--version"]);
    if !dir.join("node_modules/typescript/bin/tsc").is_file() {
        run(&dir, "npm", &["ci", "--no-audit", "--no-fund"]);
    }
    run(
        &dir,
        "node",
        &["node_modules/typescript/bin/tsc", "--noEmit", "-p", "."],
    );
}
