//! Hostile paths: whatever a sandbox's processes do to its directory, the runtime's reads,
//! listings and writes stay inside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use agent_runtime_api::{
    ErrorKind, FileTree, RelPath, Sandbox, SandboxDir, SandboxProvider, SandboxSpec,
};
use agent_runtime_local::{LocalSandboxConfig, build};
use proptest::prelude::*;

const SECRET: &[u8] = b"outside the sandbox";
const INSIDE: &[u8] = b"inside";

struct Setup {
    _root: tempfile::TempDir,
    outside: PathBuf,
    sandbox: Box<dyn Sandbox>,
}

async fn setup() -> Setup {
    let root = tempfile::tempdir().unwrap();
    let outside = root.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), SECRET).unwrap();
    let provider: Arc<dyn SandboxProvider> =
        build(LocalSandboxConfig::new(root.path().join("sandboxes"))).unwrap();
    let mut workspace = FileTree::default();
    workspace.insert(RelPath::new("in/file").unwrap(), INSIDE);
    let spec = SandboxSpec {
        session_id: "paths".to_owned(),
        owner_tag: "paths".to_owned(),
        workspace,
        env: BTreeMap::new(),
        ..SandboxSpec::default()
    };
    let sandbox = provider.create(&spec).await.unwrap();
    let workspace = Path::new(sandbox.workspace_path());
    let link = |target: &Path, name: &str| std::os::unix::fs::symlink(target, workspace.join(name));
    link(&outside, "out_dir").unwrap();
    link(&outside.join("secret"), "out_file").unwrap();
    link(Path::new("../../../outside/secret"), "climbing").unwrap();
    link(Path::new("in"), "in_alias").unwrap();
    link(Path::new("/proc/self/root/etc/passwd"), "magic").unwrap();
    Setup {
        _root: root,
        outside,
        sandbox,
    }
}

/// Replaces `path` by a symlink to `target` or by a regular file, atomically (a rename).
fn flip(path: &Path, target: &Path, to_link: bool) {
    let staged = path.with_extension("staged");
    let _ = std::fs::remove_file(&staged);
    if to_link {
        std::os::unix::fs::symlink(target, &staged).unwrap();
    } else {
        std::fs::write(&staged, INSIDE).unwrap();
    }
    std::fs::rename(&staged, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_swapped_in_while_reading_never_leads_outside() {
    let setup = setup().await;
    let workspace = PathBuf::from(setup.sandbox.workspace_path());
    let racy = workspace.join("racy");
    let secret = setup.outside.join("secret");
    std::fs::write(&racy, INSIDE).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (stop, racy, secret) = (stop.clone(), racy.clone(), secret.clone());
        std::thread::spawn(move || {
            let mut to_link = true;
            while !stop.load(Ordering::Relaxed) {
                flip(&racy, &secret, to_link);
                to_link = !to_link;
            }
        })
    };
    let path = RelPath::new("racy").unwrap();
    let (mut inside, mut refused) = (0, 0);
    for _ in 0..2000 {
        match setup
            .sandbox
            .read_file(SandboxDir::Workspace, &path, 1024)
            .await
        {
            Ok(bytes) => {
                assert_eq!(bytes, INSIDE, "read a file from outside the sandbox");
                inside += 1;
            }
            Err(e) if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::NotFound) => {
                refused += 1
            }
            Err(other) => panic!("unexpected error: {other}"),
        }
        if let Ok(mut file) = setup
            .sandbox
            .open_file(SandboxDir::Workspace, &path, 1024)
            .await
        {
            let mut bytes = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut file.reader, &mut bytes)
                .await
                .unwrap();
            assert_eq!(bytes, INSIDE, "streamed a file from outside the sandbox");
        }
    }
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    assert!(inside > 0 && refused > 0, "the race was not exercised");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_swapped_for_a_symlink_is_never_written_through_or_listed() {
    let setup = setup().await;
    let workspace = PathBuf::from(setup.sandbox.workspace_path());
    let racy = workspace.join("dir");
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (stop, racy, outside) = (stop.clone(), racy.clone(), setup.outside.clone());
        std::thread::spawn(move || {
            let staged = racy.with_extension("staged");
            while !stop.load(Ordering::Relaxed) {
                let _ = std::fs::remove_file(&staged);
                std::os::unix::fs::symlink(&outside, &staged).unwrap();
                // Over a directory a rename fails unless it is empty; move it aside.
                let _ = std::fs::rename(&racy, racy.with_extension("old"));
                let _ = std::fs::remove_dir_all(racy.with_extension("old"));
                let _ = std::fs::rename(&staged, &racy);
                let _ = std::fs::remove_file(&racy);
                let _ = std::fs::create_dir(&racy);
            }
        })
    };
    let mut tree = FileTree::default();
    tree.insert(RelPath::new("dir/planted").unwrap(), "x");
    for _ in 0..500 {
        let _ = setup
            .sandbox
            .write_files(SandboxDir::Workspace, &tree)
            .await;
        if let Ok(listed) = setup.sandbox.list_files(SandboxDir::Workspace, 1000).await {
            assert!(
                listed.iter().all(|f| !f.path.as_str().contains("secret")),
                "listed a file outside: {listed:?}"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    assert!(
        !setup.outside.join("planted").exists(),
        "wrote through a symlink to outside"
    );
}

/// Path components a hostile path is made of.
fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just(String::new()),
        Just("in".to_owned()),
        Just("file".to_owned()),
        Just("in_alias".to_owned()),
        Just("out_dir".to_owned()),
        Just("out_file".to_owned()),
        Just("climbing".to_owned()),
        Just("magic".to_owned()),
        Just("secret".to_owned()),
        Just("/".to_owned()),
        Just("\\0".to_owned()),
        "[a-z./\\\\\\x00-\\x1f~%]{0,6}",
    ]
}

fn hostile_path() -> impl Strategy<Value = String> {
    prop::collection::vec(component(), 0..6).prop_map(|parts| parts.join("/"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Any path: a stable refusal, or a file inside; never a panic, never outside bytes.
    #[test]
    fn any_path_is_refused_or_stays_inside(path in hostile_path()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let setup = setup().await;
            let Ok(path) = RelPath::new(&path) else {
                return;
            };
            for dir in [SandboxDir::Workspace, SandboxDir::AgentHome] {
                match setup.sandbox.read_file(dir, &path, 1024).await {
                    Ok(bytes) => assert_eq!(bytes, INSIDE, "{path} read {bytes:?}"),
                    Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InvalidInput) => {}
                    Err(other) => panic!("{path}: unexpected error {other}"),
                }
                let mut tree = FileTree::default();
                tree.insert(path.clone(), "planted");
                match setup.sandbox.write_files(dir, &tree).await {
                    Ok(()) => {}
                    Err(e) if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::NotFound) => {}
                    Err(other) => panic!("{path}: unexpected error {other}"),
                }
                let secret = std::fs::read(setup.outside.join("secret")).unwrap();
                assert_eq!(secret, SECRET, "{path} wrote through to outside");
                let outside: Vec<_> = std::fs::read_dir(&setup.outside).unwrap().collect();
                assert_eq!(outside.len(), 1, "{path} made a file outside");
            }
        });
    }
}
