//! Command-line parsing that mirrors the subset of Claude Code flags the runtime passes.
//!
//! Unknown flags are ignored on purpose: the runtime may add flags this stand-in does not
//! model, and failing on them would make the stand-in stricter than the real CLI.

/// Flags that take a value (`--flag value` or `--flag=value`). Their values are consumed
/// so that a value such as a system prompt is never mistaken for a flag.
const VALUE_FLAGS: &[&str] = &[
    "--output-format",
    "--input-format",
    "--model",
    "--max-turns",
    "--session-id",
    "--resume",
    "--mcp-config",
    "--permission-mode",
    "--allowedTools",
    "--allowed-tools",
    "--disallowedTools",
    "--disallowed-tools",
    "--append-system-prompt",
    "--system-prompt",
    "--permission-prompt-tool",
    "--setting-sources",
    "--fallback-model",
    "--add-dir",
    "--tools",
    "--effort",
    "--json-schema",
    "--max-budget-usd",
    "--settings",
    "--max-thinking-tokens",
];

/// The options the scripted agent acts on; everything else is accepted and ignored.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    /// `--model`: echoed in `system/init` and assistant lines.
    pub model: Option<String>,
    /// `--session-id`: the id of a new conversation.
    pub session_id: Option<String>,
    /// `--resume`: a session id or an absolute transcript path.
    pub resume: Option<String>,
    /// `--permission-mode`: echoed in `system/init`.
    pub permission_mode: Option<String>,
    /// False with `--no-session-persistence`: no transcript is written.
    pub persist: bool,
    /// `--fork-session`: `--resume` continues under a new id (`--session-id`, else a
    /// fresh one) in a new transcript, leaving the resumed one as it is.
    pub fork: bool,
    /// `--version` / `-v`: print the version and exit.
    pub version: bool,
}

/// Parses argv (without the program name).
pub fn parse(argv: impl IntoIterator<Item = String>) -> Args {
    let mut args = Args {
        persist: true,
        ..Args::default()
    };
    let mut iter = argv.into_iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        if VALUE_FLAGS.contains(&flag.as_str()) {
            let value = match inline {
                Some(value) => Some(value),
                None => iter.next(),
            };
            if let Some(value) = value {
                apply_value(&mut args, &flag, value);
            }
            continue;
        }
        match flag.as_str() {
            "--no-session-persistence" => args.persist = false,
            "--fork-session" => args.fork = true,
            "--version" | "-v" => args.version = true,
            _ => {}
        }
    }
    args
}

fn apply_value(args: &mut Args, flag: &str, value: String) {
    match flag {
        "--model" => args.model = Some(value),
        "--session-id" => args.session_id = Some(value),
        "--resume" => args.resume = Some(value),
        "--permission-mode" => args.permission_mode = Some(value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn both_value_forms_and_unknown_flags() {
        let args = parse(argv(&[
            "--output-format",
            "stream-json",
            "--verbose",
            "-p",
            "--model=m1",
            "--append-system-prompt",
            "--session-id looks like a flag",
            "--unknown-flag",
            "--resume",
            "/tmp/x.jsonl",
            "--permission-mode=acceptEdits",
            "--strict-mcp-config",
        ]));
        assert_eq!(args.model.as_deref(), Some("m1"));
        assert_eq!(args.resume.as_deref(), Some("/tmp/x.jsonl"));
        assert_eq!(args.session_id, None);
        assert_eq!(args.permission_mode.as_deref(), Some("acceptEdits"));
        assert!(args.persist);
    }

    #[test]
    fn trailing_value_flag_is_ignored() {
        let args = parse(argv(&["--session-id"]));
        assert_eq!(args.session_id, None);
    }
}
