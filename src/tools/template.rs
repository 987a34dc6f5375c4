//! Rendering a tool's templates for one call.
//!
//! Strings render as minijinja templates with strict undefined. JSON templates render
//! leaf by leaf; a leaf that is exactly one `{{ expr }}` becomes the JSON value of `expr`,
//! so `limit = "{{ args.limit }}"` stays a number and `filter = "{{ args.filter }}"` an
//! object. URLs render in an environment of their own, where every printed value is
//! percent-encoded as a component (see `super::url`).

use minijinja::syntax::SyntaxConfig;
use reqwest::Url;

use super::url::{UrlTemplate, encode_component};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::{Map, Value};

/// A template environment for tool calls.
#[derive(Debug)]
pub(crate) struct Renderer {
    env: Environment<'static>,
    /// The same, but printing every value percent-encoded: for URLs.
    url_env: Environment<'static>,
}

impl Renderer {
    /// The environments: strict undefined, no escaping, a `urlencode` filter; URLs get
    /// each printed value encoded as a component.
    pub fn new() -> Renderer {
        let env = Self::environment();
        let mut url_env = Self::environment();
        url_env.set_formatter(super::url::component_formatter);
        url_env.add_filter("urlencode", super::url::urlencode_component);
        Renderer { env, url_env }
    }

    fn environment() -> Environment<'static> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Tool templates build URLs, headers and JSON, never HTML.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        // Body strings come out as written, final newline included. Building only fails
        // for custom delimiters, which are not used here.
        if let Ok(syntax) = SyntaxConfig::builder().keep_trailing_newline(true).build() {
            env.set_syntax(syntax);
        }
        env.add_filter("urlencode", urlencode);
        env
    }

    /// Renders a URL template and checks that the URL stays where the template points:
    /// its literal scheme, host, port and path.
    pub fn render_url(&self, source: &str, context: &minijinja::Value) -> Result<Url, String> {
        let template = UrlTemplate::parse(source)?;
        let rendered = self
            .url_env
            .render_named_str("url", source, context.clone())
            .map_err(|e| format!("url: {e}"))?;
        template.check(&rendered)
    }

    /// Renders one string template; `key` names it in errors (`url`, `headers.X`).
    pub fn render_str(
        &self,
        key: &str,
        source: &str,
        context: &minijinja::Value,
    ) -> Result<String, String> {
        self.env
            .render_named_str(key, source, context.clone())
            .map_err(|e| format!("{key}: {e}"))
    }

    /// Renders every string leaf of a JSON template; object keys stay as written.
    pub fn render_json(
        &self,
        key: &str,
        template: &Value,
        context: &minijinja::Value,
    ) -> Result<Value, String> {
        match template {
            Value::String(source) => self.render_leaf(key, source, context),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.render_json(&format!("{key}[{i}]"), item, context))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(fields) => fields
                .iter()
                .map(|(name, item)| {
                    let value = self.render_json(&format!("{key}.{name}"), item, context)?;
                    Ok((name.clone(), value))
                })
                .collect::<Result<Map<_, _>, String>>()
                .map(Value::Object),
            other => Ok(other.clone()),
        }
    }

    fn render_leaf(
        &self,
        key: &str,
        source: &str,
        context: &minijinja::Value,
    ) -> Result<Value, String> {
        let Some(expr) = sole_expression(source) else {
            return self.render_str(key, source, context).map(Value::String);
        };
        // Text a template could read but an expression cannot (rare) renders as a string.
        let Ok(compiled) = self.env.compile_expression_owned(expr.to_owned()) else {
            return self.render_str(key, source, context).map(Value::String);
        };
        let value = compiled
            .eval(context.clone())
            .map_err(|e| format!("{key}: {e}"))?;
        if value.is_undefined() {
            return Err(format!("{key}: undefined value `{expr}`"));
        }
        serde_json::to_value(&value).map_err(|e| format!("{key}: `{expr}` is not JSON: {e}"))
    }
}

/// The context of one call: the session's variables plus `args`.
pub(crate) fn call_context(session: &Value, args: &Value) -> minijinja::Value {
    let mut fields = match session {
        Value::Object(fields) => fields.clone(),
        _ => Map::new(),
    };
    fields.insert("args".into(), args.clone());
    minijinja::Value::from(minijinja::value::Serde(fields))
}

/// `expr` when `source` is exactly `{{ expr }}` (whitespace control marks allowed).
fn sole_expression(source: &str) -> Option<&str> {
    let inner = source.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix(['-', '+']).unwrap_or(inner);
    let inner = inner.strip_suffix(['-', '+']).unwrap_or(inner);
    let nested = ["{{", "}}", "{%", "%}", "{#", "#}"];
    if nested.iter().any(|mark| inner.contains(mark)) || inner.trim().is_empty() {
        return None;
    }
    Some(inner.trim())
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for URL parts in
/// headers and bodies. URL templates have their own (`super::url::urlencode_component`),
/// whose output they do not encode twice.
fn urlencode(value: &minijinja::Value) -> Result<minijinja::Value, minijinja::Error> {
    // Strict undefined does not reach filter arguments; a missing value must still fail.
    if value.is_undefined() {
        let kind = minijinja::ErrorKind::UndefinedError;
        return Err(minijinja::Error::new(
            kind,
            "urlencode of an undefined value",
        ));
    }
    let encoded = encode_component(&value.to_string())?;
    Ok(minijinja::Value::from(encoded))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn context() -> minijinja::Value {
        let session = json!({
            "SESSION_ID": "s-1",
            "REGION_CODE": "btc-usd",
            "metadata": { "regionCode": "btc-usd", "tags": ["a", "b"] },
        });
        let args = json!({ "limit": 10, "ratio": 0.5, "q": "a b&c", "on": true,
                           "filter": { "side": "buy" }, "none": null });
        call_context(&session, &args)
    }

    #[test]
    fn json_leaves_render() {
        let cases = [
            (json!("{{ args.limit }}"), json!(10)),
            (json!("{{args.ratio}}"), json!(0.5)),
            (json!("{{- args.on -}}"), json!(true)),
            (json!("{{ args.filter }}"), json!({ "side": "buy" })),
            (json!("{{ args.none }}"), json!(null)),
            (json!("{{ metadata.tags }}"), json!(["a", "b"])),
            (json!("{{ args.limit * 2 }}"), json!(20)),
            (json!("{{ REGION_CODE }}"), json!("btc-usd")),
            (json!("n={{ args.limit }}"), json!("n=10")),
            (json!("{{ args.limit }}{{ args.limit }}"), json!("1010")),
            (
                json!("{{ args.limit }} and {{ REGION_CODE }}"),
                json!("10 and btc-usd"),
            ),
            (json!("{{ '}}' }}"), json!("}}")),
            (json!("plain"), json!("plain")),
            (json!(7), json!(7)),
            (
                json!({ "regionCode": "{{ REGION_CODE }}", "limit": "{{ args.limit }}",
                        "nested": [{ "id": "{{ SESSION_ID }}" }, 1, null] }),
                json!({ "regionCode": "btc-usd", "limit": 10,
                        "nested": [{ "id": "s-1" }, 1, null] }),
            ),
        ];
        let renderer = Renderer::new();
        for (template, expected) in cases {
            let got = renderer.render_json("body", &template, &context());
            assert_eq!(got, Ok(expected), "{template}");
        }
    }

    #[test]
    fn strings_render() {
        let cases = [
            (
                "https://x.test/m/{{ REGION_CODE }}?n={{ args.limit }}",
                "https://x.test/m/btc-usd?n=10",
            ),
            ("q={{ args.q | urlencode }}", "q=a%20b%26c"),
            ("{{ args.filter | tojson }}", r#"{"side": "buy"}"#),
            ("{% if args.on %}yes{% endif %}", "yes"),
            ("keep\n", "keep\n"),
        ];
        let renderer = Renderer::new();
        for (source, expected) in cases {
            let got = renderer.render_str("url", source, &context());
            assert_eq!(got.as_deref(), Ok(expected), "{source}");
        }
    }

    #[test]
    fn undefined_names_are_errors() {
        let renderer = Renderer::new();
        let ctx = context();
        let leaf = renderer.render_json("body", &json!({ "x": "{{ args.missing }}" }), &ctx);
        assert!(leaf.unwrap_err().starts_with("body.x: "));
        let top = renderer.render_json("args", &json!(["{{ NOPE }}"]), &ctx);
        assert!(top.unwrap_err().contains("args[0]"));
        let text = renderer.render_str("url", "https://x/{{ NOPE }}", &ctx);
        assert!(text.unwrap_err().contains("undefined"));
        let filtered = renderer.render_str("url", "q={{ args.nope | urlencode }}", &ctx);
        assert!(filtered.unwrap_err().contains("undefined"));
    }

    #[test]
    fn urlencode_refuses_path_steps() {
        let renderer = Renderer::new();
        for step in [".", ".."] {
            let ctx = call_context(&json!({}), &json!({ "id": step }));
            let rendered =
                renderer.render_str("url", "https://x/o/{{ args.id | urlencode }}", &ctx);
            assert!(rendered.unwrap_err().contains("may not be"), "{step}");
        }
        let ctx = call_context(&json!({}), &json!({ "id": "a.b" }));
        let rendered = renderer.render_str("url", "https://x/o/{{ args.id | urlencode }}", &ctx);
        assert_eq!(rendered.unwrap(), "https://x/o/a.b");
    }

    #[test]
    fn args_hide_a_session_variable_of_that_name() {
        let ctx = call_context(&json!({ "args": "session" }), &json!({ "a": 1 }));
        let renderer = Renderer::new();
        assert_eq!(
            renderer.render_json("b", &json!("{{ args.a }}"), &ctx),
            Ok(json!(1))
        );
    }
}
