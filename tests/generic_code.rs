//! The runtime and the adapters stay generic: an application is configuration and
//! profiles, never code. This fails on any application word in `src/` or `adapters/`.

use std::path::Path;

const APPLICATION_WORDS: [&str; 4] = ["ticketdrop", "fetch_events", "marketkey", "market_key"];

fn visit(dir: &Path, hits: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if name != "node_modules" && name != "target" && name != "_generated" {
                visit(&path, hits);
            }
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for (number, line) in text.lines().enumerate() {
            let lower = line.to_lowercase();
            if let Some(word) = APPLICATION_WORDS.iter().find(|w| lower.contains(*w)) {
                hits.push(format!(
                    "{}:{}: {word}: {}",
                    path.display(),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
}

#[test]
fn no_application_words_in_generic_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut hits = Vec::new();
    for dir in ["src", "adapters"] {
        visit(&root.join(dir), &mut hits);
    }
    assert!(
        hits.is_empty(),
        "application words in generic code:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_check_itself_finds_a_planted_word() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.rs"), "// call fetch_events here\n").unwrap();
    let mut hits = Vec::new();
    visit(dir.path(), &mut hits);
    assert_eq!(hits.len(), 1);
}
