//! The field types of request payloads: each deserializes from JSON with the refusal the
//! protocol promises, and describes itself in the JSON Schema.
//!
//! A refusal is the text after the field's name: [`super::payload`] puts the field's path
//! (`budget.maxTurns`) in front of it, so `must be a string` becomes
//! ``"`sessionId` must be a string"``. A required field that is `null` or missing is
//! ``"`sessionId` is required"``.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::{Map, Value};

use crate::runtime::MessageContent;

/// What a required field that is `null` is refused with.
pub const REQUIRED: &str = "is required";

/// The value of a field, or the refusal of a `null` one.
fn value<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Err(de::Error::custom(REQUIRED)),
        value => Ok(value),
    }
}

/// A non-empty string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match value(deserializer)? {
            Value::String(text) if text.is_empty() => Err(de::Error::custom("must not be empty")),
            Value::String(text) => Ok(Text(text)),
            _ => Err(de::Error::custom("must be a string")),
        }
    }
}

impl JsonSchema for Text {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Text".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 1 })
    }
}

/// A non-negative integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        value(deserializer)?
            .as_u64()
            .map(Count)
            .ok_or_else(|| de::Error::custom("must be a non-negative integer"))
    }
}

impl JsonSchema for Count {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Count".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": 0 })
    }
}

/// A non-negative, finite number (a cost in USD).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost(pub f64);

impl<'de> Deserialize<'de> for Cost {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match value(deserializer)?.as_f64() {
            Some(cost) if cost >= 0.0 => Ok(Cost(cost)),
            _ => Err(de::Error::custom("must be a non-negative number")),
        }
    }
}

impl JsonSchema for Cost {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Cost".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "number", "minimum": 0 })
    }
}

/// `true` or `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        value(deserializer)?
            .as_bool()
            .map(Flag)
            .ok_or_else(|| de::Error::custom("must be true or false"))
    }
}

impl JsonSchema for Flag {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Flag".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "boolean" })
    }
}

/// A JSON object, kept as it came.
#[derive(Debug, Clone, PartialEq)]
pub struct Object(pub Map<String, Value>);

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match value(deserializer)? {
            Value::Object(fields) => Ok(Object(fields)),
            _ => Err(de::Error::custom("must be a JSON object")),
        }
    }
}

impl JsonSchema for Object {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Object".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "object" })
    }
}

/// Message content: a non-empty string, or a non-empty array of Anthropic content
/// blocks (objects with a string `type`), checked by [`MessageContent::new`].
#[derive(Debug, Clone)]
pub struct Content(pub MessageContent);

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Its refusals read `content: ...` or `content[i]: ...`; the payload parser
        // puts the field's own name in place of `content`.
        MessageContent::new(value(deserializer)?)
            .map(Content)
            .map_err(|error| de::Error::custom(error.message))
    }
}

impl JsonSchema for Content {
    fn schema_name() -> Cow<'static, str> {
        "MessageContent".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A user message: a non-empty string, or a non-empty array of Anthropic content blocks (objects with a string `type`: `text`, `image`, ...).",
            "oneOf": [
                { "type": "string", "minLength": 1 },
                {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type"],
                        "properties": { "type": { "type": "string" } }
                    }
                }
            ]
        })
    }
}

/// An answer's `behavior`: `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// The tool call goes ahead (or the questions are answered).
    Allow,
    /// The tool call does not run (or the questions are declined).
    Deny,
}

impl<'de> Deserialize<'de> for Behavior {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match value(deserializer)?.as_str() {
            Some("allow") => Ok(Behavior::Allow),
            Some("deny") => Ok(Behavior::Deny),
            _ => Err(de::Error::custom("must be \"allow\" or \"deny\"")),
        }
    }
}

impl JsonSchema for Behavior {
    fn schema_name() -> Cow<'static, str> {
        "Behavior".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "enum": ["allow", "deny"] })
    }
}
