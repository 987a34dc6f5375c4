//! Server-sent event frames in the order the Messages API streams them.

use serde_json::{Value, json};

/// Largest piece of text or JSON per delta; replies are split so that clients exercise
/// their delta accumulation, as with the real API.
const DELTA_CHARS: usize = 32;

/// Frames of a text reply ending with `end_turn`.
pub fn text_reply(model: &str, message_id: &str, text: &str) -> String {
    let block = json!({"type": "text", "text": ""});
    let deltas = pieces(text)
        .into_iter()
        .map(|piece| json!({"type": "text_delta", "text": piece}));
    render(model, message_id, block, deltas.collect(), "end_turn")
}

/// Frames of a tool_use reply ending with `tool_use`.
pub fn tool_use_reply(
    model: &str,
    message_id: &str,
    tool_use_id: &str,
    name: &str,
    input_json: &str,
) -> String {
    let block = json!({"type": "tool_use", "id": tool_use_id, "name": name, "input": {}});
    let deltas = pieces(input_json)
        .into_iter()
        .map(|piece| json!({"type": "input_json_delta", "partial_json": piece}));
    render(model, message_id, block, deltas.collect(), "tool_use")
}

fn render(model: &str, message_id: &str, block: Value, deltas: Vec<Value>, stop: &str) -> String {
    let mut frames = vec![
        json!({"type": "message_start", "message": {
            "id": message_id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 1,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": block}),
    ];
    frames.extend(
        deltas
            .into_iter()
            .map(|delta| json!({"type": "content_block_delta", "index": 0, "delta": delta})),
    );
    frames.push(json!({"type": "content_block_stop", "index": 0}));
    frames.push(json!({"type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 5}}));
    frames.push(json!({"type": "message_stop"}));
    frames.iter().map(frame).collect()
}

fn frame(data: &Value) -> String {
    let event = data["type"].as_str().unwrap_or_default();
    format!("event: {event}\ndata: {data}\n\n")
}

/// Splits at char boundaries into pieces of at most [`DELTA_CHARS`] chars (at least one).
fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars
        .chunks(DELTA_CHARS)
        .map(|c| c.iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_order_and_reassembly() {
        let long = "é".repeat(70);
        let body = text_reply("m", "msg_1", &long);
        let events: Vec<&str> = body
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(
            events,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        let text: String = body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(text, long);
    }
}
