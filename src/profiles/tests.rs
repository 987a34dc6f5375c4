//! Tests of parsing, metadata checks and rendering.

use std::collections::BTreeMap;
use std::time::Duration;

use agent_runtime_api::{FileTree, ProfileBundle, RelPath};
use serde_json::{Value, json};

use crate::profiles::{
    McpServer, OnUnlistedTool, Profile, ProfileError, PromptMode, RenderContext, RenderedProfile,
};

/// Files of a test profile: path and contents.
type Files<'a> = &'a [(&'a str, &'a [u8])];

fn bundle(manifest: &str, files: Files<'_>) -> ProfileBundle {
    let mut tree = FileTree::default();
    for (path, contents) in files {
        tree.insert(RelPath::new(path).unwrap(), contents.to_vec());
    }
    ProfileBundle {
        name: "demo".into(),
        manifest: manifest.into(),
        files: tree,
    }
}

pub(crate) fn render(profile: &Profile, metadata: Value) -> Result<RenderedProfile, ProfileError> {
    let vars = BTreeMap::from([("REGION".to_owned(), "eu".to_owned())]);
    profile.render(&RenderContext {
        session_id: "s-1",
        metadata: &metadata,
        vars: &vars,
    })
}

pub(crate) fn file_text(rendered: &RenderedProfile, path: &str) -> String {
    let file = rendered.workspace.get(path).expect(path);
    String::from_utf8(file.contents.to_vec()).unwrap()
}

const PLAIN: &str = r#"description = "demo""#;

#[test]
fn renders_workspace_templates() {
    let cases: &[(&str, Value, &str)] = &[
        (
            "id {{ SESSION_ID }} of {{ AGENT_TYPE }}\n",
            json!(null),
            "id s-1 of demo\n",
        ),
        (
            "{{ regionCode }}/{{ REGION_CODE }}",
            json!({ "regionCode": "m" }),
            "m/m",
        ),
        ("{{ EVENT_TYPE }}", json!({ "event-type": "gig" }), "gig"),
        ("{{ metadata.n + 1 }}", json!({ "n": 2 }), "3"),
        ("{{ REGION }}", json!({}), "eu"),
        ("<{{ metadata.html }}>", json!({ "html": "<b>&" }), "<<b>&>"),
        (
            "{% if metadata.topic is defined %}T={{ topic }}{% else %}none{% endif %}",
            json!({}),
            "none",
        ),
        (
            "{{ metadata | tojson }}",
            json!({ "a": [1, true] }),
            r#"{"a": [1, true]}"#,
        ),
        ("two trailing\n\n", json!(null), "two trailing\n\n"),
    ];
    for (template, metadata, expected) in cases {
        let profile = Profile::parse(bundle(PLAIN, &[("page.html", template.as_bytes())])).unwrap();
        let rendered = render(&profile, metadata.clone()).unwrap();
        assert_eq!(
            file_text(&rendered, "page.html"),
            *expected,
            "template {template:?}"
        );
    }
}

const FULL: &str = r#"
description = "Full"
model = "sonnet"
max_turns = 7
permission_mode = "acceptEdits"
on_unlisted_tool = "ask"
answer_timeout = "15m"
allowed_tools = ["Read", "Bash(git:*)"]
disallowed_tools = ["WebFetch"]
system_prompt = { file = "prompt.md", mode = "replace" }
metadata_schema_file = "schema.json"

[env]
PROJECT = "p-{{ SESSION_ID }}"

[mcp_servers.local]
command = "npx"
args = ["-y", "server-{{ REGION }}"]
env = { KEY = "{{ topic }}" }

[mcp_servers.docs]
url = "https://docs.example/{{ AGENT_TYPE }}"
headers = { Authorization = "Bearer {{ TOPIC }}" }

[[tools]]
name = "lookup"
kind = "http"
description = "Looks up"
url = "https://x.example/{{ args.q }}"
input_schema = { type = "object" }

[[tools]]
name = "save"
kind = "convex"
description = "Saves"
function = "notes:save"
function_type = "mutation"
args = { text = "{{ args.text }}" }
"#;

#[test]
fn renders_every_manifest_string() {
    let schema = br#"{ "type": "object", "required": ["topic"] }"#;
    let files: &[(&str, &[u8])] = &[
        ("prompt.md", b"Session {{ SESSION_ID }} on {{ topic }}."),
        ("schema.json", schema),
        ("CLAUDE.md", b"# {{ TOPIC }}\n"),
    ];
    let profile = Profile::parse(bundle(FULL, files)).unwrap();
    let rendered = render(&profile, json!({ "topic": "jazz" })).unwrap();

    let prompt = rendered.system_prompt.as_ref().unwrap();
    assert_eq!(prompt.text, "Session s-1 on jazz.");
    assert_eq!(prompt.mode, PromptMode::Replace);
    // Neither the prompt file nor the schema file goes to the workspace.
    let paths: Vec<&str> = rendered
        .workspace
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(paths, ["CLAUDE.md"]);
    assert_eq!(file_text(&rendered, "CLAUDE.md"), "# jazz\n");
    assert_eq!(rendered.env["PROJECT"], "p-s-1");
    assert_eq!(
        rendered.mcp_servers["local"],
        McpServer::Command {
            command: "npx".into(),
            args: vec!["-y".into(), "server-eu".into()],
            env: BTreeMap::from([("KEY".into(), "jazz".into())]),
        }
    );
    assert_eq!(
        rendered.mcp_servers["docs"],
        McpServer::Url {
            url: "https://docs.example/demo".into(),
            headers: BTreeMap::from([("Authorization".into(), "Bearer jazz".into())]),
        }
    );
    assert_eq!(rendered.model.as_deref(), Some("sonnet"));
    assert_eq!(rendered.max_turns, Some(7));
    assert_eq!(rendered.permission_mode.unwrap().as_str(), "acceptEdits");
    assert_eq!(rendered.on_unlisted_tool, OnUnlistedTool::Ask);
    assert_eq!(rendered.answer_timeout, Duration::from_secs(15 * 60));
    assert_eq!(rendered.allowed_tools, ["Read", "Bash(git:*)"]);
    assert_eq!(rendered.disallowed_tools, ["WebFetch"]);
    // Tools stay unrendered: they render per call.
    let names: Vec<&str> = rendered.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["lookup", "save"]);
    assert!(format!("{:?}", rendered.tools[0].kind).contains("{{ args.q }}"));

    let summary = serde_json::to_value(profile.summary()).unwrap();
    assert_eq!(
        summary,
        json!({ "name": "demo", "description": "Full", "metadataSchema": { "type": "object", "required": ["topic"] } })
    );
    assert_eq!(profile.sample_metadata(), json!({ "topic": "sample" }));
}

#[test]
fn strict_undefined_names_the_variable_and_the_file() {
    let files: &[(&str, &[u8])] = &[("notes/CLAUDE.md", b"line one\n{{ missing_var }}\n")];
    let profile = Profile::parse(bundle(PLAIN, files)).unwrap();
    let error = render(&profile, json!({})).unwrap_err();
    assert_eq!(error.code().as_str(), "profile_invalid");
    let message = error.to_string();
    for part in ["demo", "missing_var", "notes/CLAUDE.md:2"] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }

    let manifest = "description = \"d\"\n[env]\nX = \"{{ nope }}\"\n";
    let profile = Profile::parse(bundle(manifest, &[])).unwrap();
    let message = render(&profile, json!({})).unwrap_err().to_string();
    assert!(
        message.contains("profile.toml env.X") && message.contains("nope"),
        "{message}"
    );
}

#[test]
fn syntax_errors_show_at_load_with_file_and_line() {
    let cases: &[(&str, Files<'_>, &str)] = &[
        (PLAIN, &[("a/b.md", b"ok\n{% if %}")], "a/b.md:2"),
        (
            "description = \"d\"\nsystem_prompt = { text = \"{{ x\" }\n",
            &[],
            "profile.toml system_prompt.text:1",
        ),
        (
            "description = \"d\"\n[[tools]]\nname = \"t\"\nkind = \"http\"\ndescription = \"\"\nurl = \"https://x.example/{% for %}\"\n",
            &[],
            "profile.toml tools.t.url:1",
        ),
    ];
    for (manifest, files, expected) in cases {
        let error = Profile::parse(bundle(manifest, files)).unwrap_err();
        assert_eq!(error.code().as_str(), "profile_invalid");
        assert!(
            error.to_string().contains(expected),
            "{expected:?} not in {error}"
        );
    }
}

#[test]
fn tools_are_checked_when_the_profile_loads() {
    let tool = |fields: &str| {
        format!(
            "description = \"d\"\n[[tools]]\nname = \"t\"\nkind = \"http\"\ndescription = \"\"\n{fields}"
        )
    };
    let cases = [
        (tool("url = \"{{ BASE }}/orders\"\n"), "must be written out"),
        (
            tool("url = \"https://{{ HOST }}/orders\"\n"),
            "must be written out",
        ),
        (
            tool("url = \"https://api.example{{ x }}/\"\n"),
            "must be written out",
        ),
        (
            tool("url = \"https://user@api.example/{{ x }}\"\n"),
            "must be written out",
        ),
        (
            tool("url = \"ftp://api.example/{{ x }}\"\n"),
            "must be written out",
        ),
        (
            tool("url = \"https://api.example/\"\ninput_schema = { type = 12 }\n"),
            "input schema does not compile",
        ),
    ];
    for (manifest, expected) in cases {
        let error = Profile::parse(bundle(&manifest, &[])).unwrap_err();
        assert_eq!(error.code().as_str(), "profile_invalid");
        let message = error.to_string();
        assert!(
            message.contains(expected) && message.contains("tools `t`"),
            "{message}"
        );
    }
    let fine = tool("url = \"https://api.example:8443/v1/{{ args.id }}?q={{ args.q }}\"\n");
    assert!(Profile::parse(bundle(&fine, &[])).is_ok());
}

#[test]
fn a_budget_section_sets_the_limits_and_its_absence_is_unlimited() {
    let plain = Profile::parse(bundle("description = \"d\"\n", &[])).unwrap();
    assert_eq!(plain.budget(), agent_runtime_api::Budget::default());
    let manifest = "description = \"d\"\n[budget]\nmax_cost_usd = 0.5\nmax_turns = 3\n";
    let limited = Profile::parse(bundle(manifest, &[])).unwrap();
    assert_eq!(
        limited.budget(),
        agent_runtime_api::Budget {
            max_cost_usd: Some(0.5),
            max_tokens: None,
            max_turns: Some(3),
        }
    );
}

#[test]
fn manifest_errors_name_the_key_and_line() {
    let cases = [
        ("description = \"d\"\nmodle = \"x\"\n", "modle"),
        ("description = \"d\"\nmodle = \"x\"\n", "line 2"),
        ("model = \"x\"\n", "description"),
        ("description = \"d\"\npermission_mode = \"yolo\"\n", "yolo"),
        (
            "description = \"d\"\non_unlisted_tool = \"maybe\"\n",
            "maybe",
        ),
        ("description = \"d\"\nanswer_timeout = \"soon\"\n", "soon"),
        ("description = \"d\"\nanswer_timeout = \"0s\"\n", "0s"),
        (
            "description = \"d\"\nanswer_timeout = \"8days\"\n",
            "`answer_timeout` is at most 7days",
        ),
        ("description = \"d\"\nmax_turns = -1\n", "line 2"),
        (
            "description = \"d\"\nsystem_prompt = { mode = \"append\" }\n",
            "`file` or `text`",
        ),
        (
            "description = \"d\"\nsystem_prompt = { file = \"p.md\" }\n",
            "`p.md` does not exist",
        ),
        (
            "description = \"d\"\n[mcp_servers.x]\nargs = []\n",
            "mcp_servers.x",
        ),
        ("description = \"d\"\n[env]\n\"A-B\" = \"1\"\n", "A-B"),
        (
            "description = \"d\"\ntemplate_exclude = [\"[\"]\n",
            "template_exclude",
        ),
        (
            "description = \"d\"\nmetadata_schema = { type = \"string\" }\n",
            "metadata_schema",
        ),
        (
            "description = \"d\"\n[[tools]]\nname = \"t\"\nkind = \"convex\"\ndescription = \"\"\n",
            "function_type",
        ),
        (
            "description = \"d\"\n[[tools]]\nname = \"t\"\nkind = \"ftp\"\ndescription = \"\"\n",
            "ftp",
        ),
        ("description = \"d\"\n[budget]\nmax_cost = 1\n", "max_cost"),
        ("description = \"d\"\n[budget]\nmax_turns = -1\n", "line 3"),
        (
            "description = \"d\"\n[budget]\nmax_cost_usd = -0.5\n",
            "`budget.max_cost_usd` must be a non-negative number",
        ),
        (
            "description = \"d\"\n[budget]\nmax_cost_usd = nan\n",
            "`budget.max_cost_usd` must be a non-negative number",
        ),
    ];
    for (manifest, expected) in cases {
        let error = Profile::parse(bundle(manifest, &[])).unwrap_err();
        assert_eq!(error.code().as_str(), "profile_invalid", "{manifest}");
        assert!(
            error.to_string().contains(expected),
            "{expected:?} not in {error}"
        );
    }
}

#[test]
fn metadata_that_clashes_with_variables_is_refused() {
    let profile = Profile::parse(bundle(PLAIN, &[])).unwrap();
    let cases = [
        (json!({ "sessionId": "x" }), "SESSION_ID"),
        (json!({ "agent_type": "x" }), "AGENT_TYPE"),
        (json!({ "metadata": 1 }), "metadata"),
        (json!({ "region": "x" }), "REGION"),
        (json!({ "topic": 1, "TOPIC": 2 }), "TOPIC"),
        (json!({ "regionCode": 1, "region_code": 2 }), "REGION_CODE"),
    ];
    for (metadata, variable) in cases {
        let error = render(&profile, metadata.clone()).unwrap_err();
        assert_eq!(error.code().as_str(), "metadata_invalid", "{metadata}");
        assert!(
            error.to_string().contains(variable),
            "{variable} not in {error}"
        );
    }
}

#[test]
fn metadata_is_checked_against_the_schema() {
    let manifest = r#"
description = "d"
metadata_schema = { type = "object", required = ["topic", "when"], properties = { topic = { type = "string" }, when = {}, count = { type = "integer", minimum = 1 } }, additionalProperties = false }
"#;
    let profile = Profile::parse(bundle(manifest, &[])).unwrap();
    assert!(
        profile
            .validate_metadata(&json!({ "topic": "a", "when": 1 }))
            .is_ok()
    );

    let error = profile
        .validate_metadata(&json!({ "topic": 5, "count": 0, "extra": true }))
        .unwrap_err();
    assert_eq!(error.code().as_str(), "metadata_invalid");
    let message = error.to_string();
    for part in ["at /topic", "at /count", "at (root)", "when", "extra"] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }

    for not_an_object in [json!([1]), json!("x"), json!(3)] {
        let error = profile.validate_metadata(&not_an_object).unwrap_err();
        assert!(error.to_string().contains("must be an object"), "{error}");
    }
    let error = render(&profile, json!({})).unwrap_err();
    assert_eq!(error.code().as_str(), "metadata_invalid");
}

#[test]
fn excluded_and_binary_files_are_copied_verbatim() {
    let manifest = "description = \"d\"\ntemplate_exclude = [\"scripts/**\", \"*.raw\"]\n";
    let binary: &[u8] = &[0xff, 0xfe, b'{', b'{', 0x00];
    let files: &[(&str, &[u8])] = &[
        ("scripts/run.sh", b"echo {{ not_rendered }}"),
        ("top.raw", b"{{ raw }}"),
        ("sub/deep.raw", b"{{ SESSION_ID }}"),
        ("logo.png", binary),
    ];
    let mut bundle = bundle(manifest, files);
    let script = bundle
        .files
        .files
        .iter_mut()
        .find(|f| f.path.as_str() == "scripts/run.sh");
    script.unwrap().executable = true;
    let profile = Profile::parse(bundle).unwrap();
    let rendered = render(&profile, json!({})).unwrap();
    assert_eq!(
        file_text(&rendered, "scripts/run.sh"),
        "echo {{ not_rendered }}"
    );
    assert!(rendered.workspace.get("scripts/run.sh").unwrap().executable);
    assert_eq!(file_text(&rendered, "top.raw"), "{{ raw }}");
    // `*` does not cross folders, so the nested file is a template.
    assert_eq!(file_text(&rendered, "sub/deep.raw"), "s-1");
    assert_eq!(
        rendered
            .workspace
            .get("logo.png")
            .unwrap()
            .contents
            .as_ref(),
        binary
    );
}

#[test]
fn sample_metadata_without_a_schema_is_empty() {
    let profile = Profile::parse(bundle(PLAIN, &[])).unwrap();
    assert_eq!(profile.sample_metadata(), json!({}));
    assert_eq!(profile.summary().metadata_schema, None);
}

#[test]
fn profiles_can_be_shared_between_tasks() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Profile>();
    shareable::<RenderedProfile>();
    shareable::<crate::profiles::DirectoryProfileSource>();
}

/// A profile source whose backend fails with `error` on every load.
struct FailingSource(agent_runtime_api::AdapterError);

#[agent_runtime_api::async_trait]
impl agent_runtime_api::ProfileSource for FailingSource {
    async fn list(&self) -> agent_runtime_api::AdapterResult<Vec<String>> {
        Err(self.0.clone())
    }
    async fn load(&self, _name: &str) -> agent_runtime_api::AdapterResult<ProfileBundle> {
        Err(self.0.clone())
    }
}

#[tokio::test]
async fn load_failures_become_runtime_errors_with_their_codes() {
    use agent_runtime_api::AdapterError;
    use agent_runtime_api::memory::MemoryProfileSource;

    use crate::error::RuntimeError;

    let empty = MemoryProfileSource::new([]);
    let cases: [(Box<dyn agent_runtime_api::ProfileSource>, &str); 4] = [
        (Box::new(empty), "profile_not_found"),
        (
            Box::new(FailingSource(AdapterError::invalid_input("bad name"))),
            "profile_not_found",
        ),
        (
            Box::new(FailingSource(AdapterError::unavailable("down"))),
            "storage_unavailable",
        ),
        (
            Box::new(FailingSource(AdapterError::other("broken"))),
            "internal",
        ),
    ];
    for (source, code) in cases {
        let error = Profile::load(source.as_ref(), "missing").await.unwrap_err();
        assert_eq!(error.code().as_str(), code, "{error}");
        let error = RuntimeError::from(error);
        assert_eq!(error.code.as_str(), code, "{error}");
        assert!(
            !error.message.contains("broken"),
            "backend details are not shown"
        );
    }
}

#[test]
fn fixed_workspace_holds_the_files_every_session_gets_alike() {
    let manifest = "description = \"demo\"\ntemplate_exclude = [\"raw/*\"]\n";
    let files: Files<'_> = &[
        ("CLAUDE.md", b"Be brief.\n{% if true %}Always.{% endif %}\n"),
        ("task.md", b"Session {{ SESSION_ID }}\n"),
        ("region.md", b"{{ REGION }}\n"),
        ("raw/page.html", b"{{ not a template }}"),
        ("logo.png", b"\x89PNG\xff"),
        ("local.md", b"{% set who = \"me\" %}{{ who }}"),
    ];
    let profile = Profile::parse(bundle(manifest, files)).unwrap();
    let fixed = profile.fixed_workspace();
    let paths: Vec<&str> = fixed.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        ["CLAUDE.md", "local.md", "logo.png", "raw/page.html"],
        "templates that read a variable differ per session"
    );
    let rendered = render(&profile, json!(null)).unwrap();
    for file in &fixed.files {
        assert_eq!(
            rendered
                .workspace
                .get(file.path.as_str())
                .map(|f| &f.contents),
            Some(&file.contents),
            "{} renders the same for a session",
            file.path
        );
    }
}
