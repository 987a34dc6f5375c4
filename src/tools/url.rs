//! URLs of `http` tools: where a call may go.
//!
//! A tool's arguments come from the agent, and its session variables partly from the
//! client (metadata), while its headers carry the runtime's credentials. So the template
//! alone decides where a request goes:
//!
//! - the scheme, host and port are written literally, before any template tag, and end
//!   with the `/` that starts the path; a template that does not is refused when the
//!   profile loads;
//! - every `{{ expr }}` in a URL is percent-encoded as one component (only RFC 3986's
//!   unreserved characters stay), so a value cannot add a path step, a query parameter,
//!   a fragment or userinfo; a value that is exactly `.` or `..` is refused. Only the
//!   output of the URL environment's own `urlencode`, already encoded, is printed as it
//!   is: minijinja's "safe" mark is not trusted, since `tojson`, `escape` or `join` hand
//!   it to values an agent chose;
//! - the rendered URL must still have the template's scheme, host and port, no userinfo,
//!   and a path below the template's literal path.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, Output, State};
use reqwest::Url;

/// The fixed part of a URL template: its origin and the literal path before any tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlTemplate {
    origin: Origin,
    path_prefix: String,
}

/// Scheme, host and port (the scheme's default when not written).
type Origin = (String, Option<String>, Option<u16>);

fn origin_of(url: &Url) -> Origin {
    let host = url.host_str().map(str::to_owned);
    (url.scheme().to_owned(), host, url.port_or_known_default())
}

impl UrlTemplate {
    /// Reads the literal start of `template`.
    ///
    /// # Behavior
    /// - `Err` unless `scheme://host[:port]/` (http or https) is written out before the
    ///   first `{{`, `{%` or `{#`.
    pub fn parse(template: &str) -> Result<UrlTemplate, String> {
        let tag = ["{{", "{%", "{#"]
            .iter()
            .filter_map(|mark| template.find(mark))
            .min()
            .unwrap_or(template.len());
        let literal = &template[..tag];
        let refuse = || {
            format!(
                "url: the scheme, host and port must be written out and followed by `/` \
                 before any template tag (found {literal:?})"
            )
        };
        let (scheme, rest) = literal.split_once("://").ok_or_else(refuse)?;
        if !matches!(scheme, "http" | "https") {
            return Err(refuse());
        }
        // The authority must be closed by a literal `/`: `https://host{{ x }}` would let
        // x continue the host name, or start userinfo with `@`.
        let path_start = rest.find('/').ok_or_else(refuse)?;
        if rest[..path_start].contains(['?', '#', '@']) {
            return Err(refuse());
        }
        let url = Url::parse(literal).map_err(|_| refuse())?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse());
        }
        // Only the path up to the last literal `/` is certain; a literal query or
        // fragment ends it.
        let literal_path = url.path();
        let cut = literal_path.rfind('/').map_or(1, |i| i + 1);
        Ok(UrlTemplate {
            origin: origin_of(&url),
            path_prefix: literal_path[..cut].to_owned(),
        })
    }

    /// Parses a rendered URL and checks that it stays where the template points.
    pub fn check(&self, rendered: &str) -> Result<Url, String> {
        // The URL may carry credentials: errors name the problem, never the URL.
        let url =
            Url::parse(rendered).map_err(|e| format!("url: the rendered URL is invalid: {e}"))?;
        if origin_of(&url) != self.origin {
            return Err("url: the rendered URL leaves the template's scheme, host or port".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("url: the rendered URL carries userinfo".into());
        }
        if !url.path().starts_with(&self.path_prefix) {
            return Err("url: the rendered URL leaves the template's path".into());
        }
        Ok(url)
    }
}

/// A value the URL environment's `urlencode` filter encoded. Private, so that nothing
/// else (a filter that marks its output safe, a value from the context) can pass as one.
#[derive(Debug)]
struct Encoded(String);

impl Object for Encoded {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `urlencode` filter of URL templates: the value percent-encoded as a component,
/// which [`component_formatter`] prints without encoding it again.
pub(crate) fn urlencode_component(value: &Value) -> Result<Value, Error> {
    // Strict undefined does not reach filter arguments; a missing value must still fail.
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "urlencode of an undefined value",
        ));
    }
    let encoded = encode_component(&value.to_string())?;
    Ok(Value::from_object(Encoded(encoded)))
}

/// The formatter of URL templates: each printed value percent-encoded as a component,
/// but for the output of [`urlencode_component`], printed as it is.
pub(crate) fn component_formatter(
    out: &mut Output,
    _state: &mut State,
    value: &Value,
) -> Result<(), Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "an undefined value in a URL",
        ));
    }
    let text = match value.downcast_object_ref::<Encoded>() {
        Some(encoded) => encoded.0.clone(),
        None => encode_component(&value.to_string())?,
    };
    out.write_str(&text)
        .map_err(|_| Error::new(ErrorKind::WriteFailure, "could not write the URL"))
}

/// Percent-encodes everything but RFC 3986's unreserved characters. Refuses `.` and
/// `..`: URL parsers treat them (encoded or not) as path steps.
pub(crate) fn encode_component(text: &str) -> Result<String, Error> {
    if text == "." || text == ".." {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "a URL component may not be `.` or `..`",
        ));
    }
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::tools::template::{Renderer, call_context};

    fn render(template: &str, args: serde_json::Value) -> Result<Url, String> {
        let context = call_context(&json!({ "TOKEN": "t/o k" }), &args);
        Renderer::new().render_url(template, &context)
    }

    #[test]
    fn values_are_encoded_as_components() {
        let cases = [
            (
                "https://api.example/o/{{ args.v }}",
                "a b/c",
                "https://api.example/o/a%20b%2Fc",
            ),
            (
                "https://api.example/o/{{ args.v }}",
                "../admin",
                "https://api.example/o/..%2Fadmin",
            ),
            (
                "https://api.example/o?q={{ args.v }}",
                "x&admin=1#f",
                "https://api.example/o?q=x%26admin%3D1%23f",
            ),
            (
                "https://api.example/o/{{ args.v | urlencode }}",
                "a b",
                "https://api.example/o/a%20b",
            ),
            (
                "https://api.example/{{ args.v }}",
                "@evil.example",
                "https://api.example/%40evil.example",
            ),
            (
                "https://api.example/{{ args.v }}",
                "é",
                "https://api.example/%C3%A9",
            ),
            (
                "https://api.example/t/{{ TOKEN }}",
                "",
                "https://api.example/t/t%2Fo%20k",
            ),
            (
                "https://api.example/n/{{ args.v | length }}",
                "abc",
                "https://api.example/n/3",
            ),
            // Filters that mark their output safe do not spare it the encoding.
            (
                "https://api.example/o?q={{ args.v | tojson }}",
                "x#f",
                "https://api.example/o?q=%22x%23f%22",
            ),
            (
                "https://api.example/o?q={{ args.v | escape }}",
                "x?a=1",
                "https://api.example/o?q=x%3Fa%3D1",
            ),
            (
                "https://api.example/o?q={{ [args.v | urlencode, 'y'] | join('&') }}",
                "x",
                "https://api.example/o?q=x%26y",
            ),
            (
                "https://api.example/o/{{ args.v | safe }}",
                "../../x#f",
                "https://api.example/o/..%2F..%2Fx%23f",
            ),
            (
                "https://api.example/o?q={{ args.v | urlencode | upper }}",
                "a b",
                "https://api.example/o?q=A%2520B",
            ),
        ];
        for (template, value, expected) in cases {
            let url = render(template, json!({ "v": value }));
            assert_eq!(
                url.map(String::from).as_deref(),
                Ok(expected),
                "{template} {value:?}"
            );
        }
    }

    #[test]
    fn what_cannot_stay_in_place_is_refused() {
        let cases = [
            (
                "https://api.example/o/{{ args.v }}",
                json!({ "v": ".." }),
                "may not be",
            ),
            (
                "https://api.example/o/{{ args.v }}",
                json!({ "v": "." }),
                "may not be",
            ),
            ("https://api.example/o/{{ args.v }}", json!({}), "undefined"),
            (
                "{{ args.v }}/o",
                json!({ "v": "https://evil.example" }),
                "must be written out",
            ),
        ];
        for (template, args, expected) in cases {
            let error = render(template, args.clone()).unwrap_err();
            assert!(error.contains(expected), "{template} {args}: {error}");
        }
    }

    #[test]
    fn template_literals() {
        for good in [
            "https://api.example/",
            "http://127.0.0.1:8080/v1/{{ x }}",
            "https://[::1]/x?{{ q }}",
            "https://api.example/plain",
        ] {
            assert!(UrlTemplate::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "https://api.example",
            "https://api.example{{ x }}/",
            "https://api.example:{{ port }}/",
            "https://{{ host }}/",
            "https://user:pw@api.example/",
            "https://api.example?{{ q }}/",
            "file:///etc/{{ x }}",
            "{{ base }}",
            "",
        ] {
            assert!(UrlTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the agent sends, the request stays at the template's origin and below
        /// its literal path, or the call is refused; rendering never panics.
        #[test]
        fn arguments_never_move_a_request(value in any::<String>(), number in any::<i64>()) {
            let templates = [
                "https://api.example:8443/v1/items/{{ args.v }}",
                "https://api.example:8443/v1/items/{{ args.v }}/{{ args.n }}?q={{ args.v }}",
                "https://api.example:8443/v1/{{ args.v | urlencode }}#{{ args.v }}",
                "https://api.example:8443/v1/{{ args.v | lower }}x{{ args.v }}",
                "https://api.example:8443/v1/{{ args.v | safe }}/{{ args.v | escape }}",
            ];
            for template in templates {
                let rendered = render(template, json!({ "v": value, "n": number }));
                if let Ok(url) = rendered {
                    prop_assert_eq!(url.scheme(), "https");
                    prop_assert_eq!(url.host_str(), Some("api.example"));
                    prop_assert_eq!(url.port(), Some(8443));
                    prop_assert!(url.username().is_empty() && url.password().is_none());
                    prop_assert!(url.path().starts_with("/v1/"), "{}", url);
                }
            }
            // Values marked safe by a filter still cannot start a query or a fragment.
            let template = "https://api.example:8443/v1/{{ args.v | tojson }}?q={{ args.v | escape }}&r={{ [args.v, args.v | safe] | join(',') }}";
            if let Ok(url) = render(template, json!({ "v": value })) {
                prop_assert_eq!(url.fragment(), None);
                let keys: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
                prop_assert_eq!(keys, ["q", "r"]);
                prop_assert_eq!(url.path_segments().map(Iterator::count), Some(2));
            }
        }

        /// Any template text either loads as a URL template or is refused; no panic.
        #[test]
        fn any_template_text_is_parsed_or_refused(template in any::<String>()) {
            let _ = UrlTemplate::parse(&template);
            let _ = UrlTemplate::parse(&format!("https://api.example/{template}"));
        }
    }
}
