//! The metadata JSON Schema: compiling, validating, and building sample metadata.

use serde_json::{Map, Value, json};

/// A compiled metadata schema with the JSON it came from.
#[derive(Debug, Clone)]
pub(crate) struct MetadataSchema {
    value: Value,
    validator: jsonschema::Validator,
}

impl MetadataSchema {
    /// Compiles `value`; the error is a message for `profile_invalid`.
    pub fn compile(value: Value) -> Result<MetadataSchema, String> {
        if let Some(kind) = value.get("type")
            && !type_allows_object(kind)
        {
            return Err(format!(
                "the metadata schema must describe an object, but its type is {kind}"
            ));
        }
        let validator = jsonschema::validator_for(&value)
            .map_err(|e| format!("the metadata schema does not compile: {e}"))?;
        Ok(MetadataSchema { value, validator })
    }

    /// The schema as JSON.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Every violation of the schema by `instance`, each as `at <JSON pointer>: <message>`.
    pub fn violations(&self, instance: &Value) -> Vec<String> {
        violations(&self.validator, instance)
    }
}

/// A tool's input schema, compiled once when its profile loads, with `format` enforced
/// (a string declared `"format": "uri"` must be a URI).
#[derive(Clone)]
pub struct InputSchema {
    value: Value,
    validator: std::sync::Arc<jsonschema::Validator>,
}

impl InputSchema {
    /// Compiles `value`; the error says why it does not compile.
    pub fn compile(value: Value) -> Result<InputSchema, String> {
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&value)
            .map_err(|e| format!("the input schema does not compile: {e}"))?;
        Ok(InputSchema {
            value,
            validator: std::sync::Arc::new(validator),
        })
    }

    /// The schema as JSON.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Every violation of the schema by `instance`, each as `at <JSON pointer>: <message>`.
    pub fn violations(&self, instance: &Value) -> Vec<String> {
        violations(&self.validator, instance)
    }
}

/// Every violation of `validator`'s schema by `instance`, as `at <JSON pointer>: <message>`.
fn violations(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|error| {
            let pointer = error.instance_path().as_str();
            let pointer = if pointer.is_empty() {
                "(root)"
            } else {
                pointer
            };
            format!("at {pointer}: {error}")
        })
        .collect()
}

impl std::fmt::Debug for InputSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("InputSchema").field(&self.value).finish()
    }
}

/// Two schemas are equal when their JSON is: the validator is a function of it.
impl PartialEq for InputSchema {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

fn type_allows_object(kind: &Value) -> bool {
    match kind {
        Value::String(name) => name == "object",
        Value::Array(names) => names.iter().any(|n| n == "object"),
        _ => true,
    }
}

/// A value that satisfies the common constraints of `schema`: only required properties,
/// `const`, `default`, then the first of `enum` or `examples`, else a value of the type.
pub(crate) fn sample(schema: &Value) -> Value {
    let Some(schema) = schema.as_object() else {
        return Value::Null;
    };
    for key in ["const", "default"] {
        if let Some(value) = schema.get(key) {
            return value.clone();
        }
    }
    for key in ["enum", "examples"] {
        if let Some(first) = schema
            .get(key)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return first.clone();
        }
    }
    match sample_type(schema) {
        "object" => sample_object(schema),
        "array" => sample_array(schema),
        "integer" | "number" => sample_number(schema),
        "boolean" => Value::Bool(true),
        "null" => Value::Null,
        _ => sample_string(schema),
    }
}

/// The type to build: the first non-null one named, else guessed from the keywords.
fn sample_type(schema: &Map<String, Value>) -> &str {
    match schema.get("type") {
        Some(Value::String(name)) => name,
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(Value::as_str)
            .find(|n| *n != "null")
            .unwrap_or("null"),
        _ if schema.contains_key("properties") || schema.contains_key("required") => "object",
        _ if schema.contains_key("items") => "array",
        _ => "string",
    }
}

fn sample_object(schema: &Map<String, Value>) -> Value {
    let properties = schema.get("properties").and_then(Value::as_object);
    let required = schema.get("required").and_then(Value::as_array);
    let object = required
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|name| {
            let property = properties.and_then(|p| p.get(name)).unwrap_or(&Value::Null);
            let value = if property.is_object() {
                sample(property)
            } else {
                Value::String("sample".into())
            };
            (name.to_owned(), value)
        })
        .collect();
    Value::Object(object)
}

fn sample_array(schema: &Map<String, Value>) -> Value {
    // A handful of items at most: enough for `minItems`, never a huge allocation.
    let count = schema
        .get("minItems")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(16);
    let item = schema.get("items").map(sample).unwrap_or(json!("sample"));
    Value::Array(vec![item; count as usize])
}

fn sample_number(schema: &Map<String, Value>) -> Value {
    match schema.get("minimum").and_then(Value::as_f64) {
        Some(minimum) if minimum > 1.0 => json!(minimum.ceil() as i64),
        _ => json!(1),
    }
}

fn sample_string(schema: &Map<String, Value>) -> Value {
    let by_format = match schema.get("format").and_then(Value::as_str) {
        Some("email") => "user@example.com",
        Some("uri" | "url") => "https://example.com/",
        Some("date") => "2024-01-01",
        Some("date-time") => "2024-01-01T00:00:00Z",
        Some("uuid") => "00000000-0000-4000-8000-000000000000",
        _ => "sample",
    };
    let min = schema
        .get("minLength")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(256) as usize;
    let mut text = by_format.to_owned();
    while text.chars().count() < min {
        text.push('x');
    }
    Value::String(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_follow_the_schema() {
        let cases = [
            (json!({}), json!("sample")),
            (json!({ "type": "integer", "minimum": 5 }), json!(5)),
            (json!({ "type": ["null", "boolean"] }), json!(true)),
            (json!({ "enum": ["b", "a"] }), json!("b")),
            (
                json!({ "type": "string", "minLength": 8 }),
                json!("samplexx"),
            ),
            (
                json!({ "type": "array", "minItems": 2, "items": { "type": "number" } }),
                json!([1, 1]),
            ),
            (
                json!({
                    "type": "object",
                    "required": ["topic", "nested"],
                    "properties": {
                        "topic": { "type": "string" },
                        "skipped": { "type": "string" },
                        "nested": { "required": ["n"], "properties": { "n": { "type": "number" } } }
                    }
                }),
                json!({ "topic": "sample", "nested": { "n": 1 } }),
            ),
        ];
        for (schema, expected) in cases {
            assert_eq!(sample(&schema), expected, "schema {schema}");
        }
    }

    #[test]
    fn a_schema_for_a_non_object_is_refused() {
        let error = MetadataSchema::compile(json!({ "type": "string" })).unwrap_err();
        assert!(error.contains("must describe an object"), "{error}");
    }

    #[test]
    fn a_schema_that_does_not_compile_is_refused() {
        let error =
            MetadataSchema::compile(json!({ "type": "object", "minProperties": "x" })).unwrap_err();
        assert!(error.contains("does not compile"), "{error}");
    }
}
