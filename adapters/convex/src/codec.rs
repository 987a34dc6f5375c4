//! Convex's encoded JSON (the `convex_encoded_json` format) for the values this crate
//! sends and receives.
//!
//! Sending: a JSON number is a Convex float64. Integers with magnitude up to 2^53 are sent
//! as they are (exact as float64); larger ones are refused rather than silently rounded;
//! send them with [`int64`] or as strings. An object that is already an encoded value
//! (`{"$integer": ..}`, `{"$bytes": ..}`, `{"$float": ..}`, e.g. from [`int64`] or
//! [`bytes()`]) passes through; any other key starting with `$` is refused, as Convex does.
//!
//! Receiving: `{"$integer"}` becomes a JSON integer, `{"$bytes"}` a standard base64
//! string, `{"$float"}` a number for `-0`, or the string `"NaN"`, `"Infinity"` or
//! `"-Infinity"` (the same strings Convex's `json` format uses).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Number, Value};

use crate::ConvexError;

/// The largest integer a float64 holds exactly: seqs, versions and sizes stay below it.
pub(crate) const MAX_EXACT: u64 = 1 << 53;

/// An int64 argument (`v.int64()` in a Convex validator), encoded as Convex expects.
pub fn int64(value: i64) -> Value {
    encoded("$integer", &value.to_le_bytes())
}

/// A bytes argument (`v.bytes()` in a Convex validator), encoded as Convex expects.
pub fn bytes(value: &[u8]) -> Value {
    encoded("$bytes", value)
}

fn encoded(tag: &str, raw: &[u8]) -> Value {
    let mut object = Map::new();
    object.insert(tag.to_owned(), Value::String(STANDARD.encode(raw)));
    Value::Object(object)
}

/// Encodes plain JSON as Convex arguments; see the module documentation.
pub fn encode(value: Value) -> Result<Value, ConvexError> {
    match value {
        Value::Number(number) => encode_number(number),
        Value::Array(items) => items
            .into_iter()
            .map(encode)
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(object) if is_encoded_value(&object) => Ok(Value::Object(object)),
        Value::Object(object) => {
            let mut out = Map::new();
            for (key, item) in object {
                if key.starts_with('$') {
                    return Err(ConvexError::InvalidArgs(format!(
                        "object key {key:?} starts with `$`, which Convex reserves"
                    )));
                }
                out.insert(key, encode(item)?);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other),
    }
}

fn encode_number(number: Number) -> Result<Value, ConvexError> {
    let exact = match (number.as_u64(), number.as_i64()) {
        (Some(n), _) => n <= MAX_EXACT,
        (None, Some(n)) => n.unsigned_abs() <= MAX_EXACT,
        // A float: serde_json holds only finite ones, all valid float64s.
        (None, None) => true,
    };
    if !exact {
        return Err(ConvexError::InvalidArgs(format!(
            "integer {number} does not fit a Convex float64 exactly; send it as a string \
             or with `int64()`"
        )));
    }
    Ok(Value::Number(number))
}

/// Whether `object` is one encoded special value, e.g. `{"$integer": "AQAAAAAAAAA="}`.
fn is_encoded_value(object: &Map<String, Value>) -> bool {
    object.len() == 1
        && object.iter().all(|(key, value)| {
            matches!(key.as_str(), "$integer" | "$bytes" | "$float") && value.is_string()
        })
}

/// Decodes a value received in `convex_encoded_json`; see the module documentation.
pub fn decode(value: Value) -> Result<Value, ConvexError> {
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(decode)
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(object) if is_encoded_value(&object) => decode_special(object),
        Value::Object(object) => object
            .into_iter()
            .map(|(key, item)| Ok((key, decode(item)?)))
            .collect::<Result<Map<_, _>, _>>()
            .map(Value::Object),
        other => Ok(other),
    }
}

fn decode_special(object: Map<String, Value>) -> Result<Value, ConvexError> {
    let Some((tag, Value::String(text))) = object.into_iter().next() else {
        return Err(ConvexError::InvalidResponse("empty encoded value".into()));
    };
    let raw = STANDARD
        .decode(&text)
        .map_err(|err| ConvexError::InvalidResponse(format!("bad base64 in {tag}: {err}")))?;
    if tag == "$bytes" {
        return Ok(Value::String(text));
    }
    let eight: [u8; 8] = raw
        .try_into()
        .map_err(|_| ConvexError::InvalidResponse(format!("{tag} must hold 8 bytes")))?;
    if tag == "$integer" {
        return Ok(Value::Number(i64::from_le_bytes(eight).into()));
    }
    let float = f64::from_le_bytes(eight);
    Ok(match Number::from_f64(float) {
        Some(number) => Value::Number(number),
        None if float.is_nan() => Value::String("NaN".into()),
        None if float > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    })
}

/// A u64 counter as a float64 number; refuses values a float64 cannot hold exactly.
pub(crate) fn counter(value: u64, what: &str) -> Result<Value, ConvexError> {
    if value > MAX_EXACT {
        return Err(ConvexError::InvalidArgs(format!(
            "{what} {value} is above 2^53, which Convex numbers cannot hold exactly"
        )));
    }
    Ok(Value::from(value))
}

/// Reads a u64 counter sent as a float64 number (`3`, `3.0`) or an integer.
pub(crate) fn read_counter(value: &Value, what: &str) -> Result<u64, ConvexError> {
    let bad =
        || ConvexError::InvalidResponse(format!("{what} is not a non-negative integer: {value}"));
    if let Some(n) = value.as_u64() {
        return Ok(n);
    }
    let float = value.as_f64().ok_or_else(bad)?;
    if float < 0.0 || float.fract() != 0.0 || float > MAX_EXACT as f64 {
        return Err(bad());
    }
    // Exact: the float is integral and within 0..=2^53.
    Ok(float as u64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn specials_match_the_documented_examples() {
        assert_eq!(int64(1), json!({"$integer": "AQAAAAAAAAA="}));
        assert_eq!(int64(-1), json!({"$integer": "//////////8="}));
        assert_eq!(
            int64(1_700_000_000_000),
            json!({"$integer": "AGjlz4sBAAA="})
        );
        assert_eq!(bytes(&[0x00, 0x10, 0x83]), json!({"$bytes": "ABCD"}));
    }

    #[test]
    fn encode_keeps_plain_json_and_specials() {
        let args = json!({"a": [1, 2.5, "x", null, true], "n": 9007199254740992_u64,
                          "big": int64(1 << 60), "b": bytes(b"hi")});
        assert_eq!(encode(args.clone()).unwrap(), args);
    }

    #[test]
    fn encode_refuses_what_convex_would_mangle() {
        let too_big = encode(json!({"n": 9007199254740993_u64})).unwrap_err();
        assert!(too_big.to_string().contains("int64"), "{too_big}");
        assert!(encode(json!({"n": -9007199254740993_i64})).is_err());
        let dollar = encode(json!({"x": {"$id": "1"}})).unwrap_err();
        assert!(dollar.to_string().contains("$id"), "{dollar}");
    }

    #[test]
    fn decode_turns_specials_into_plain_json() {
        let received = json!({"i": int64(-5), "b": {"$bytes": "ABCD"},
                              "nan": {"$float": "AAAAAAAA+H8="}, "list": [int64(7)]});
        assert_eq!(
            decode(received).unwrap(),
            json!({"i": -5, "b": "ABCD", "nan": "NaN", "list": [7]})
        );
        assert!(decode(json!({"$integer": "AQ=="})).is_err(), "short int64");
    }

    #[test]
    fn counters_round_trip_as_floats() {
        assert_eq!(counter(7, "seq").unwrap(), json!(7));
        assert!(counter(MAX_EXACT + 1, "seq").is_err());
        assert_eq!(read_counter(&json!(7.0), "seq").unwrap(), 7);
        assert_eq!(read_counter(&json!(MAX_EXACT), "seq").unwrap(), MAX_EXACT);
        for bad in [json!(-1.0), json!(1.5), json!("3"), json!(1e300)] {
            assert!(read_counter(&bad, "seq").is_err(), "{bad}");
        }
    }
}
