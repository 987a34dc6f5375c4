//! Property tests of the local sandbox's path handling: whatever relative path the
//! runtime passes (a file an agent made, a file restored from storage), writes and reads
//! stay inside the sandbox, also through a symlink the agent planted; nothing panics.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use agent_runtime_api::{FileTree, RelPath, Sandbox, SandboxDir, SandboxSpec};
use agent_runtime_local::{LocalSandboxConfig, build};
use proptest::prelude::*;

/// One sandbox for every case, a directory outside it that must stay empty, and a
/// symlink from the workspace to that directory.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    sandbox: Box<dyn Sandbox>,
    outside: PathBuf,
    _root: tempfile::TempDir,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let root = tempfile::tempdir().unwrap();
    let outside = root.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sandbox = runtime.block_on(async {
        let provider = build(LocalSandboxConfig::new(root.path().join("sandboxes"))).unwrap();
        let spec = SandboxSpec {
            session_id: "paths".into(),
            owner_tag: "paths-test".into(),
            ..SandboxSpec::default()
        };
        provider.create(&spec).await.unwrap()
    });
    let link = Path::new(sandbox.workspace_path()).join("out");
    std::os::unix::fs::symlink(&outside, link).unwrap();
    Fixture {
        runtime,
        sandbox,
        outside,
        _root: root,
    }
});

fn path_like() -> impl Strategy<Value = RelPath> {
    let piece = prop::sample::select(&["a", "b.txt", "out", "..", ".", "é", " ", "~"][..]);
    prop::collection::vec(piece, 1..5)
        .prop_map(|pieces| pieces.join("/"))
        .prop_filter_map("a valid path", |text| RelPath::new(&text).ok())
}

fn dir() -> impl Strategy<Value = SandboxDir> {
    prop::sample::select(&[SandboxDir::Workspace, SandboxDir::AgentHome][..])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn writes_and_reads_stay_in_the_sandbox(
        path in path_like(),
        dir in dir(),
        contents in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        let fixture = &*FIXTURE;
        let mut files = FileTree::default();
        files.insert(path.clone(), contents.clone());
        let (written, read) = fixture.runtime.block_on(async {
            let written = fixture.sandbox.write_files(dir, &files).await;
            let read = fixture.sandbox.read_file(dir, &path).await;
            (written, read)
        });
        let through_link = dir == SandboxDir::Workspace && path.as_str().starts_with("out/");
        if through_link {
            prop_assert!(written.is_err(), "wrote through the symlink: {}", path);
            prop_assert!(read.is_err(), "read through the symlink: {}", path);
        } else if written.is_ok() {
            prop_assert_eq!(read.ok().map(|b| b.to_vec()), Some(contents));
        }
        let escaped: Vec<_> = std::fs::read_dir(&fixture.outside).unwrap().collect();
        prop_assert!(escaped.is_empty(), "{} reached outside: {:?}", path, escaped);
    }
}
