//! The JSONL conversation transcript, stored where Claude Code stores it:
//! `$CLAUDE_CONFIG_DIR/projects/<slug of cwd>/<session-id>.jsonl`.
//!
//! Lines are appended (open, write, close) as each message lands, so a crash or a kill
//! leaves every line written so far on disk, as it does with the real CLI.

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::args::Args;
use crate::shapes::{INTERRUPTED_TEXT, now, text_of, uuid};

/// Why a transcript could not be opened; the caller reports it like Claude Code does.
#[derive(Debug)]
pub enum OpenError {
    /// `--session-id` named a transcript that already exists.
    InUse(String),
    /// `--resume` named a conversation that does not exist.
    NotFound(String),
}

/// The conversation of this process: its id, where it is stored and the user prompts so far.
pub struct Transcript {
    session_id: String,
    cwd: String,
    /// None with `--no-session-persistence`.
    path: Option<PathBuf>,
    /// uuid of the last line written, for `parentUuid` chaining.
    last_uuid: Option<String>,
    /// Texts of the user prompts of this conversation, oldest first.
    prompts: Vec<String>,
    /// With `--fork-session`: the resumed transcript, copied (under this conversation's
    /// id) into this one before its first line, as Claude Code does at the first turn.
    fork_of: Option<PathBuf>,
}

/// Claude Code's project-directory slug: every char outside `[A-Za-z0-9]` becomes `-`.
pub fn slug(path: &str) -> String {
    path.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// `$CLAUDE_CONFIG_DIR`, else `~/.claude`.
fn config_dir() -> PathBuf {
    match std::env::var_os("CLAUDE_CONFIG_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".claude")
        }
    }
}

impl Transcript {
    /// Opens the transcript chosen by `--session-id` / `--resume` (or a fresh id).
    pub fn open(args: &Args, cwd: &str) -> Result<Transcript, OpenError> {
        let project_dir = config_dir().join("projects").join(slug(cwd));
        let mut transcript = Transcript {
            session_id: uuid(),
            cwd: cwd.to_owned(),
            path: None,
            last_uuid: None,
            prompts: Vec::new(),
            fork_of: None,
        };
        if let Some(resume) = &args.resume {
            let path = resume_path(resume, &project_dir);
            if !path.is_file() {
                return Err(OpenError::NotFound(resume.clone()));
            }
            transcript.load(&path);
            if args.fork {
                if let Some(id) = &args.session_id {
                    transcript.session_id = id.clone();
                }
                let own = project_dir.join(format!("{}.jsonl", transcript.session_id));
                transcript.fork_of = Some(path);
                transcript.path = args.persist.then_some(own);
                return Ok(transcript);
            }
            transcript.session_id = session_id_of(&path).unwrap_or_else(|| resume.clone());
            transcript.path = args.persist.then_some(path);
            return Ok(transcript);
        }
        if let Some(id) = &args.session_id {
            let path = project_dir.join(format!("{id}.jsonl"));
            if path.exists() {
                return Err(OpenError::InUse(id.clone()));
            }
            transcript.session_id = id.clone();
        }
        let path = project_dir.join(format!("{}.jsonl", transcript.session_id));
        transcript.path = args.persist.then_some(path);
        Ok(transcript)
    }

    /// The conversation's session id.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// User prompts before the latest one.
    pub fn previous_prompts(&self) -> &[String] {
        let n = self.prompts.len().saturating_sub(1);
        &self.prompts[..n]
    }

    /// Records a user prompt (`content` as the host sent it).
    pub fn record_prompt(&mut self, content: &Value) {
        self.prompts.push(text_of(content));
        self.append(
            "user",
            json!({"role": "user", "content": content}),
            None,
            None,
        );
    }

    /// Records an assistant message object under the uuid of its stdout line, as Claude
    /// Code does.
    pub fn record_assistant(&mut self, message: &Value, line_uuid: Option<&str>) {
        self.append(
            "assistant",
            message.clone(),
            None,
            line_uuid.map(str::to_owned),
        );
    }

    /// Records a user line that is not a prompt (tool result or interrupt marker).
    pub fn record_user_line(&mut self, message: &Value, tool_use_result: Option<&Value>) {
        self.append("user", message.clone(), tool_use_result, None);
    }

    fn append(
        &mut self,
        kind: &str,
        message: Value,
        tool_use_result: Option<&Value>,
        line_uuid: Option<String>,
    ) {
        let Some(path) = &self.path else { return };
        if let Some(base) = self.fork_of.take()
            && let Err(err) = copy_as(&base, path, &self.session_id)
        {
            eprintln!(
                "scripted-agent: cannot fork transcript {}: {err}",
                base.display()
            );
        }
        let id = line_uuid.unwrap_or_else(uuid);
        let mut line = json!({
            "parentUuid": self.last_uuid,
            "isSidechain": false,
            "type": kind,
            "message": message,
            "uuid": id,
            "timestamp": now(),
            "userType": "external",
            "entrypoint": "sdk-cli",
            "cwd": self.cwd,
            "sessionId": self.session_id,
            "version": "scripted",
        });
        if let Some(result) = tool_use_result {
            line["toolUseResult"] = result.clone();
        }
        if let Err(err) = write_line(path, &line) {
            eprintln!(
                "scripted-agent: cannot write transcript {}: {err}",
                path.display()
            );
        }
        self.last_uuid = Some(id);
    }

    /// Loads prompts and the last uuid from an existing transcript; bad lines are skipped.
    fn load(&mut self, path: &Path) {
        let Ok(file) = fs::File::open(path) else {
            return;
        };
        for line in BufReader::new(file).lines().map_while(Result::ok) {
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if let Some(id) = value["uuid"].as_str() {
                self.last_uuid = Some(id.to_owned());
            }
            if let Some(prompt) = prompt_of(&value) {
                self.prompts.push(prompt);
            }
        }
    }
}

/// The text of a transcript line if it is a user prompt (not a tool result or marker).
fn prompt_of(line: &Value) -> Option<String> {
    if line["type"] != "user" || line.get("toolUseResult").is_some() {
        return None;
    }
    let content = &line["message"]["content"];
    let has_tool_result = content
        .as_array()
        .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "tool_result"));
    let text = text_of(content);
    (!has_tool_result && text != INTERRUPTED_TEXT).then_some(text)
}

/// `--resume` takes an id (looked up under the cwd's slug) or a path to a `.jsonl` file.
fn resume_path(resume: &str, project_dir: &Path) -> PathBuf {
    if resume.ends_with(".jsonl") || resume.contains('/') {
        PathBuf::from(resume)
    } else {
        project_dir.join(format!("{resume}.jsonl"))
    }
}

/// The session id stored in a transcript, else its file stem.
fn session_id_of(path: &Path) -> Option<String> {
    let file = fs::File::open(path).ok()?;
    let from_lines = BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
        .find_map(|v| v["sessionId"].as_str().map(str::to_owned));
    from_lines.or_else(|| Some(path.file_stem()?.to_string_lossy().into_owned()))
}

/// Writes the lines of transcript `from` to `to` under conversation `session_id`.
fn copy_as(from: &Path, to: &Path, session_id: &str) -> std::io::Result<()> {
    for line in BufReader::new(fs::File::open(from)?).lines() {
        let Ok(mut value) = serde_json::from_str::<Value>(&line?) else {
            continue;
        };
        if value.get("sessionId").is_some() {
            value["sessionId"] = json!(session_id);
        }
        write_line(to, &value)?;
    }
    Ok(())
}

fn write_line(path: &Path, line: &Value) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    let mut text = line.to_string();
    text.push('\n');
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_matches_claude_code() {
        assert_eq!(
            slug("/srv/proj/odd.dir_name/sub dir@x"),
            "-srv-proj-odd-dir-name-sub-dir-x"
        );
    }

    #[test]
    fn prompts_skip_tool_results_and_interrupts() {
        let prompt = json!({"type": "user", "message": {"content": "hi"}});
        let marker = json!({"type": "user", "message": {"content": [{"type": "text", "text": INTERRUPTED_TEXT}]}});
        let tool = json!({"type": "user", "message": {"content": [{"type": "tool_result", "content": "x"}]}});
        assert_eq!(prompt_of(&prompt).as_deref(), Some("hi"));
        assert_eq!(prompt_of(&marker), None);
        assert_eq!(prompt_of(&tool), None);
    }
}
