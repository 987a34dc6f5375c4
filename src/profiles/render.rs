//! Templates: compiled once when a profile is parsed, rendered per session.

use std::collections::BTreeMap;

use agent_runtime_api::{FileEntry, FileTree, RelPath};
use bytes::Bytes;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde_json::Map;

use crate::profiles::manifest::{Manifest, McpServerSpec, PromptSource, ToolKind};

/// The names a metadata key may not take, besides the config's `[vars]`.
/// Names no metadata key or config variable may take; `args` holds a tool call's arguments.
pub(crate) const RESERVED: [&str; 4] = ["SESSION_ID", "AGENT_TYPE", "metadata", "args"];

/// Prefix of the template names of strings that live in `profile.toml`.
const MANIFEST: &str = "profile.toml";

/// Every template of a profile, parsed.
#[derive(Debug, Clone)]
pub(crate) struct Templates {
    /// Templates named by their file path: workspace files and the system prompt file.
    files: Environment<'static>,
    /// Templates from `profile.toml` strings, named `profile.toml <key>`.
    manifest: Environment<'static>,
    /// The workspace in file order; templates are looked up by path in `files`.
    workspace: Vec<WorkspaceFile>,
    /// The system prompt's template: in `manifest` when `true`, else in `files`; and its name.
    prompt: Option<(bool, String)>,
}

#[derive(Debug, Clone)]
struct WorkspaceFile {
    path: RelPath,
    executable: bool,
    /// `None` for a template, else the bytes copied verbatim.
    verbatim: Option<Bytes>,
}

impl Templates {
    /// Parses every template. The system prompt file and `schema_file` do not go to the
    /// workspace. The error is a message for `profile_invalid`.
    pub fn compile(
        manifest: &Manifest,
        files: &FileTree,
        schema_file: Option<&RelPath>,
    ) -> Result<Templates, String> {
        let exclude = exclude_set(&manifest.template_exclude)?;
        let mut templates = Templates {
            files: environment()?,
            manifest: environment()?,
            workspace: Vec::new(),
            prompt: None,
        };
        let mut skip = Vec::from_iter(schema_file);
        if let Some((source, _)) = &manifest.system_prompt {
            templates.add_prompt(source, files)?;
            if let PromptSource::File(path) = source {
                skip.push(path);
            }
        }
        for file in files.files.iter().filter(|f| !skip.contains(&&f.path)) {
            templates.add_workspace_file(file, &exclude)?;
        }
        templates.add_manifest_strings(manifest)?;
        check_tool_syntax(manifest)?;
        Ok(templates)
    }

    /// Renders the workspace files.
    pub fn render_workspace(&self, context: &Value) -> Result<FileTree, String> {
        let files = self
            .workspace
            .iter()
            .map(|file| {
                let contents = match &file.verbatim {
                    Some(bytes) => bytes.clone(),
                    None => Bytes::from(render(&self.files, file.path.as_str(), context)?),
                };
                Ok(FileEntry {
                    path: file.path.clone(),
                    contents,
                    executable: file.executable,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(FileTree { files })
    }

    /// The workspace files every session gets alike: those copied verbatim and the
    /// templates that read no variable, rendered. A template that fails to render is left
    /// out (a session's own render reports it).
    pub fn fixed_workspace(&self) -> FileTree {
        let empty = Value::from(BTreeMap::<String, Value>::new());
        let files = self
            .workspace
            .iter()
            .filter_map(|file| {
                let contents = match &file.verbatim {
                    Some(bytes) => bytes.clone(),
                    None => {
                        let template = self.files.get_template(file.path.as_str()).ok()?;
                        if !template.undeclared_variables(false).is_empty() {
                            return None;
                        }
                        Bytes::from(template.render(empty.clone()).ok()?)
                    }
                };
                Some(FileEntry {
                    path: file.path.clone(),
                    contents,
                    executable: file.executable,
                })
            })
            .collect();
        FileTree { files }
    }

    /// Renders the system prompt, if the profile has one.
    pub fn render_prompt(&self, context: &Value) -> Result<Option<String>, String> {
        let Some((in_manifest, name)) = &self.prompt else {
            return Ok(None);
        };
        let env = if *in_manifest {
            &self.manifest
        } else {
            &self.files
        };
        render(env, name, context).map(Some)
    }

    /// Renders a `profile.toml` string, compiled under `profile.toml <key>`.
    pub fn render_manifest(&self, key: &str, context: &Value) -> Result<String, String> {
        render(&self.manifest, &format!("{MANIFEST} {key}"), context)
    }

    fn add_prompt(&mut self, source: &PromptSource, files: &FileTree) -> Result<(), String> {
        match source {
            PromptSource::Text(text) => {
                let name = format!("{MANIFEST} system_prompt.text");
                add(&mut self.manifest, name.clone(), text.clone())?;
                self.prompt = Some((true, name));
                Ok(())
            }
            PromptSource::File(path) => {
                let Some(file) = files.get(path.as_str()) else {
                    return Err(format!("system prompt file `{path}` does not exist"));
                };
                let Ok(text) = std::str::from_utf8(&file.contents) else {
                    return Err(format!("system prompt file `{path}` is not UTF-8"));
                };
                add(&mut self.files, path.to_string(), text.to_owned())?;
                self.prompt = Some((false, path.to_string()));
                Ok(())
            }
        }
    }

    fn add_workspace_file(
        &mut self,
        file: &FileEntry,
        exclude: &globset::GlobSet,
    ) -> Result<(), String> {
        let text = match std::str::from_utf8(&file.contents) {
            Ok(text) if !exclude.is_match(file.path.as_str()) => Some(text),
            _ => None,
        };
        if let Some(text) = text {
            add(&mut self.files, file.path.to_string(), text.to_owned())?;
        }
        self.workspace.push(WorkspaceFile {
            path: file.path.clone(),
            executable: file.executable,
            verbatim: text.is_none().then(|| file.contents.clone()),
        });
        Ok(())
    }

    fn add_manifest_strings(&mut self, manifest: &Manifest) -> Result<(), String> {
        for (key, source) in manifest_strings(manifest) {
            add(
                &mut self.manifest,
                format!("{MANIFEST} {key}"),
                source.to_owned(),
            )?;
        }
        Ok(())
    }
}

/// Every rendered string of `profile.toml` with its key; the same keys render later.
pub(crate) fn manifest_strings(manifest: &Manifest) -> Vec<(String, &str)> {
    let mut strings: Vec<(String, &str)> = manifest
        .env
        .iter()
        .map(|(name, value)| (format!("env.{name}"), value.as_str()))
        .collect();
    for (server, spec) in &manifest.mcp_servers {
        match spec {
            McpServerSpec::Command { args, env, .. } => {
                for (i, arg) in args.iter().enumerate() {
                    strings.push((format!("mcp_servers.{server}.args[{i}]"), arg));
                }
                for (name, value) in env {
                    strings.push((format!("mcp_servers.{server}.env.{name}"), value));
                }
            }
            McpServerSpec::Url { url, headers } => {
                strings.push((format!("mcp_servers.{server}.url"), url));
                for (name, value) in headers {
                    strings.push((format!("mcp_servers.{server}.headers.{name}"), value));
                }
            }
        }
    }
    strings
}

/// Builds the variables of one session; `Err((code_is_metadata, message))`.
pub(crate) fn variables(
    session_id: &str,
    agent_type: &str,
    metadata: &Map<String, serde_json::Value>,
    vars: &BTreeMap<String, String>,
) -> Result<Value, (bool, String)> {
    let mut values: BTreeMap<String, Value> = BTreeMap::new();
    for (name, value) in vars {
        if RESERVED.contains(&name.as_str()) {
            return Err((
                false,
                format!("config variable `{name}` is a reserved name"),
            ));
        }
        values.insert(name.clone(), Value::from(value.as_str()));
    }
    // Which metadata key defined each name, to report collisions between keys.
    let mut defined_by: BTreeMap<String, &str> = BTreeMap::new();
    for (key, value) in metadata {
        let shouty = screaming_snake(key);
        let names = [key.as_str(), shouty.as_str()];
        for name in names.into_iter().filter(|n| !n.is_empty()) {
            if let Some(other) = defined_by.get(name) {
                if *other != key {
                    return Err((
                        true,
                        format!("metadata keys `{other}` and `{key}` both set variable `{name}`"),
                    ));
                }
                continue;
            }
            if RESERVED.contains(&name) || vars.contains_key(name) {
                return Err((
                    true,
                    format!("metadata key `{key}` would replace variable `{name}`"),
                ));
            }
            defined_by.insert(name.to_owned(), key);
            values.insert(name.to_owned(), Value::from(Serde(value)));
        }
    }
    values.insert("SESSION_ID".into(), Value::from(session_id));
    values.insert("AGENT_TYPE".into(), Value::from(agent_type));
    values.insert("metadata".into(), Value::from(Serde(metadata)));
    Ok(Value::from(values))
}

/// `regionCode` → `REGION_CODE`, `event-type` → `EVENT_TYPE`, `HTTPServer` → `HTTP_SERVER`.
pub(crate) fn screaming_snake(key: &str) -> String {
    heck::ToShoutySnakeCase::to_shouty_snake_case(key)
}

fn environment() -> Result<Environment<'static>, String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Profiles produce Markdown, JSON and shell, never HTML: no escaping by file name.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    // Files must come out byte for byte as written, final newline included.
    let syntax = SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| e.to_string())?;
    env.set_syntax(syntax);
    Ok(env)
}

fn add(env: &mut Environment<'static>, name: String, source: String) -> Result<(), String> {
    env.add_template_owned(name, source)
        .map_err(|e| e.to_string())
}

fn render(env: &Environment<'static>, name: &str, context: &Value) -> Result<String, String> {
    let template = env.get_template(name).map_err(|e| e.to_string())?;
    template.render(context.clone()).map_err(|e| e.to_string())
}

fn exclude_set(globs: &[String]) -> Result<globset::GlobSet, String> {
    let mut set = globset::GlobSetBuilder::new();
    for glob in globs {
        // `*` stays within one folder, as in .gitignore; `**` crosses folders.
        let parsed = globset::GlobBuilder::new(glob)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("profile.toml: template_exclude: {e}"))?;
        set.add(parsed);
    }
    set.build()
        .map_err(|e| format!("profile.toml: template_exclude: {e}"))
}

/// Tools render per call, but a syntax error should show when the profile loads.
fn check_tool_syntax(manifest: &Manifest) -> Result<(), String> {
    let mut env = environment()?;
    for tool in &manifest.tools {
        let key = format!("{MANIFEST} tools.{}", tool.name);
        let mut strings: Vec<(String, String)> = Vec::new();
        match &tool.kind {
            ToolKind::Http {
                url, headers, body, ..
            } => {
                strings.push((format!("{key}.url"), url.clone()));
                for (name, value) in headers {
                    strings.push((format!("{key}.headers.{name}"), value.clone()));
                }
                collect_json_strings(&format!("{key}.body"), body.as_ref(), &mut strings);
            }
            ToolKind::Convex { args, .. } => {
                collect_json_strings(&format!("{key}.args"), args.as_ref(), &mut strings);
            }
        }
        for (name, source) in strings {
            add(&mut env, name, source)?;
        }
    }
    Ok(())
}

fn collect_json_strings(
    key: &str,
    value: Option<&serde_json::Value>,
    out: &mut Vec<(String, String)>,
) {
    match value {
        Some(serde_json::Value::String(text)) => out.push((key.to_owned(), text.clone())),
        Some(serde_json::Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                collect_json_strings(&format!("{key}[{i}]"), Some(item), out);
            }
        }
        Some(serde_json::Value::Object(fields)) => {
            for (name, item) in fields {
                collect_json_strings(&format!("{key}.{name}"), Some(item), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screaming_snake_case_conversions() {
        let cases = [
            ("regionCode", "REGION_CODE"),
            ("event-type", "EVENT_TYPE"),
            ("HTTPServer", "HTTP_SERVER"),
            ("topic", "TOPIC"),
            ("already_snake", "ALREADY_SNAKE"),
            ("TOPIC", "TOPIC"),
            ("userId2", "USER_ID2"),
            ("with space", "WITH_SPACE"),
        ];
        for (key, expected) in cases {
            assert_eq!(screaming_snake(key), expected, "{key}");
        }
    }
}
