//! Convex's encoded JSON as the fake reads arguments and writes results.
//!
//! Arguments: `{"$integer": base64 LE i64}` becomes a JSON integer, `{"$bytes": b64}` the
//! base64 string, `{"$float": b64}` a number or `"NaN"`/`"Infinity"`/`"-Infinity"`; any
//! other `$` key is refused, as Convex refuses it. Results: handlers return plain JSON,
//! which may hold encoded values; `convex_encoded_json` passes them through, `json`
//! writes int64 as a decimal string and bytes as base64 (Convex's clean JSON), and
//! `export_json` writes int64 as a JSON integer.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Number, Value};

/// Decodes received arguments; the error is a message for a 400 answer.
pub(super) fn decode(value: Value) -> Result<Value, String> {
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(decode)
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(object) => {
            if let Some(special) = special(&object) {
                return special.map(|s| s.plain(true));
            }
            let mut out = Map::new();
            for (key, item) in object {
                if key.starts_with('$') {
                    return Err(format!("object field {key:?} starts with `$`"));
                }
                out.insert(key, decode(item)?);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other),
    }
}

/// Encodes a handler's result for `format`.
pub(super) fn encode(value: Value, format: &str) -> Value {
    if matches!(format, "convex_encoded_json" | "convex_json") {
        return value;
    }
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(|v| encode(v, format)).collect()),
        Value::Object(object) => match special(&object) {
            Some(Ok(special)) => special.plain(format == "export_json"),
            _ => Value::Object(
                object
                    .into_iter()
                    .map(|(k, v)| (k, encode(v, format)))
                    .collect(),
            ),
        },
        other => other,
    }
}

enum Special {
    Integer(i64),
    Bytes(String),
    Float(f64),
}

impl Special {
    /// The plain JSON form; `integer_as_number` picks a JSON integer over a string.
    fn plain(self, integer_as_number: bool) -> Value {
        match self {
            Special::Integer(n) if integer_as_number => Value::Number(n.into()),
            Special::Integer(n) => Value::String(n.to_string()),
            Special::Bytes(b64) => Value::String(b64),
            Special::Float(f) => match Number::from_f64(f) {
                Some(n) => Value::Number(n),
                None if f.is_nan() => Value::String("NaN".into()),
                None if f > 0.0 => Value::String("Infinity".into()),
                None => Value::String("-Infinity".into()),
            },
        }
    }
}

/// `Some` when `object` is one encoded value; `Err` when it is malformed.
fn special(object: &Map<String, Value>) -> Option<Result<Special, String>> {
    if object.len() != 1 {
        return None;
    }
    let (tag, value) = object.iter().next()?;
    let text = value.as_str()?;
    let parsed = match tag.as_str() {
        "$bytes" => STANDARD
            .decode(text)
            .map(|_| Special::Bytes(text.to_owned()))
            .map_err(|err| format!("bad $bytes: {err}")),
        "$integer" => eight_bytes(text).map(|b| Special::Integer(i64::from_le_bytes(b))),
        "$float" => eight_bytes(text).map(|b| Special::Float(f64::from_le_bytes(b))),
        _ => return None,
    };
    Some(parsed)
}

fn eight_bytes(text: &str) -> Result<[u8; 8], String> {
    let raw = STANDARD
        .decode(text)
        .map_err(|err| format!("bad base64: {err}"))?;
    raw.try_into()
        .map_err(|_| "an encoded number must hold 8 bytes".to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn decodes_documented_examples() {
        let args = json!({"i": {"$integer": "AGjlz4sBAAA="}, "b": {"$bytes": "ABCD"},
                          "f": {"$float": "AAAAAAAA+H8="}, "n": 3.5});
        assert_eq!(
            decode(args).unwrap(),
            json!({"i": 1_700_000_000_000_i64, "b": "ABCD", "f": "NaN", "n": 3.5})
        );
        assert!(decode(json!({"$id": "x"})).is_err());
        assert!(decode(json!({"i": {"$integer": "AQ=="}})).is_err());
    }

    #[test]
    fn encodes_for_each_format() {
        let value = json!({"i": {"$integer": "AQAAAAAAAAA="}});
        assert_eq!(encode(value.clone(), "convex_encoded_json"), value);
        assert_eq!(encode(value.clone(), "json"), json!({"i": "1"}));
        assert_eq!(encode(value, "export_json"), json!({"i": 1}));
    }
}
