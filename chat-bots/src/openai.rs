//! The OpenAI chat-completions wire format: the request, the whole answer, and the
//! streamed chunks folded back into one answer.

use std::borrow::Cow;

use chat_core::{BotError, BotErrorKind, Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The function offered to the model for asking for a human.
pub const HANDOFF_TOOL: &str = "handoff_to_human";

/// Body of `POST /chat/completions`.
#[derive(Debug, Serialize)]
pub(crate) struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: Vec<ChatMessage<'a>>,
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Value>,
}

/// One entry of `messages`.
#[derive(Debug, Serialize)]
pub(crate) struct ChatMessage<'a> {
    pub role: &'static str,
    pub content: Cow<'a, str>,
}

/// The `tools` array offering [`HANDOFF_TOOL`]; with departments, the model may only
/// name one of them.
pub(crate) fn handoff_tools(departments: &[String]) -> Value {
    let mut department = json!({
        "type": "string",
        "description": "The team that should take over, if the request clearly belongs to one.",
    });
    if !departments.is_empty() {
        department["enum"] = json!(departments);
    }
    json!([{
        "type": "function",
        "function": {
            "name": HANDOFF_TOOL,
            "description": "Hand the conversation to a human support agent. Call this when \
                the customer asks for a human, or when you cannot help them.",
            "parameters": {
                "type": "object",
                "properties": {
                    "department": department,
                    "reason": {
                        "type": "string",
                        "description": "Why a human is needed, in one short sentence for the agent.",
                    },
                },
                "required": [],
            },
        },
    }])
}

/// What the model answered, streamed or not.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Completion {
    /// The text of the answer (may be empty when the model only called a tool).
    pub text: String,
    /// Tools the model called, in order.
    pub tool_calls: Vec<ToolCall>,
}

/// One tool call: its function name and its JSON arguments as text.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ToolCall {
    pub name: String,
    pub arguments: String,
}

#[derive(Deserialize)]
struct ChatResponse {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<Delta>,
}

/// A whole assistant message, or one streamed piece of it: the same fields.
#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallPart>>,
}

#[derive(Deserialize)]
struct ToolCallPart {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionPart>,
}

#[derive(Deserialize)]
struct FunctionPart {
    #[serde(default)]
    name: Option<String>,
    /// A JSON string per the spec (a fragment of one when streamed); some servers send an
    /// object instead.
    #[serde(default)]
    arguments: Option<Value>,
}

impl FunctionPart {
    fn arguments_text(&self) -> String {
        match &self.arguments {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct ChatChunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// Parses a non-streamed answer.
pub(crate) fn parse_response(body: &[u8]) -> Result<Completion> {
    let response: ChatResponse = serde_json::from_slice(body)
        .map_err(|e| format_error("answer is not a chat completion", e))?;
    if let Some(error) = response.error {
        return Err(service_error(&error));
    }
    let message = response
        .choices
        .into_iter()
        .next()
        .and_then(|c| c.message)
        .ok_or_else(|| Error::bot(BotErrorKind::Format, "answer has no choices[0].message"))?;
    let tool_calls = message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .filter_map(|call| call.function)
        .map(|f| ToolCall {
            arguments: f.arguments_text(),
            name: f.name.unwrap_or_default(),
        })
        .collect();
    Ok(Completion {
        text: message.content.unwrap_or_default(),
        tool_calls,
    })
}

/// Folds streamed chunks into one [`Completion`], holding at most `max` bytes of text and
/// tool arguments.
#[derive(Debug)]
pub(crate) struct StreamAccumulator {
    completion: Completion,
    /// `index` of each entry of `completion.tool_calls`, as the server numbered them.
    call_indexes: Vec<usize>,
    held: usize,
    max: usize,
    done: bool,
    finish_reason: bool,
}

impl StreamAccumulator {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            completion: Completion::default(),
            call_indexes: Vec::new(),
            held: 0,
            max,
            done: false,
            finish_reason: false,
        }
    }

    /// Whether `data: [DONE]` arrived.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Takes one `data:` payload; returns the text it adds, if any, for relaying.
    pub(crate) fn push(&mut self, payload: &str) -> Result<Option<String>> {
        if payload.trim() == "[DONE]" {
            self.done = true;
            return Ok(None);
        }
        let chunk: ChatChunk = serde_json::from_str(payload)
            .map_err(|e| format_error("stream chunk is not a completion chunk", e))?;
        if let Some(error) = chunk.error {
            return Err(service_error(&error));
        }
        // Only `n = 1` is ever requested: the first choice is the answer.
        let Some(choice) = chunk.choices.into_iter().next() else {
            return Ok(None);
        };
        self.finish_reason |= choice.finish_reason.is_some();
        let Some(delta) = choice.delta else {
            return Ok(None);
        };
        for part in delta.tool_calls.unwrap_or_default() {
            self.push_tool_call(part)?;
        }
        match delta.content.filter(|c| !c.is_empty()) {
            Some(content) => {
                self.hold(content.len())?;
                self.completion.text.push_str(&content);
                Ok(Some(content))
            }
            None => Ok(None),
        }
    }

    /// The answer once the stream ended. A stream that stops without `[DONE]` or a
    /// `finish_reason` was cut off: its text is incomplete, so it is an error.
    pub(crate) fn finish(self) -> Result<Completion> {
        if self.done || self.finish_reason {
            Ok(self.completion)
        } else {
            // Cut off on the way, not malformed: the transport failed.
            Err(Error::bot(
                BotErrorKind::Transport,
                "stream ended before [DONE]",
            ))
        }
    }

    /// Streamed tool calls come in fragments: the first names the function, the rest
    /// append pieces of the JSON arguments, all tagged with the call's `index`.
    fn push_tool_call(&mut self, part: ToolCallPart) -> Result<()> {
        let slot = match part.index {
            Some(index) => self.call_indexes.iter().position(|&i| i == index),
            // Servers that omit `index` send one call per `id`, continued without an `id`.
            None if part.id.is_some() => None,
            None => self.call_indexes.len().checked_sub(1),
        };
        let slot = match slot {
            Some(slot) => slot,
            None => {
                let index = part.index.unwrap_or(self.call_indexes.len());
                self.call_indexes.push(index);
                self.completion.tool_calls.push(ToolCall::default());
                self.call_indexes.len() - 1
            }
        };
        if let Some(function) = part.function {
            let arguments = function.arguments_text();
            let name = function.name.unwrap_or_default();
            self.hold(name.len() + arguments.len())?;
            let call = &mut self.completion.tool_calls[slot];
            call.name.push_str(&name);
            call.arguments.push_str(&arguments);
        }
        Ok(())
    }

    fn hold(&mut self, bytes: usize) -> Result<()> {
        self.held += bytes;
        if self.held > self.max {
            return Err(crate::http::too_large(self.max));
        }
        Ok(())
    }
}

/// An `error` member in a 2xx answer (some servers report failures mid-stream this way).
fn service_error(error: &Value) -> Error {
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| error.as_str())
        .unwrap_or("unspecified");
    let message: String = message.chars().take(200).collect();
    // Neither a status nor a malformed answer: the service says it failed, in its own words.
    Error::bot(
        BotErrorKind::Other,
        format!("service reported an error: {message}"),
    )
}

/// An answer that does not parse as the protocol says, with the parser's error as source.
pub(crate) fn format_error(what: &str, e: serde_json::Error) -> Error {
    Error::Bot(BotError::new(BotErrorKind::Format, format!("{what}: {e}")).with_source(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_call_fragments_are_joined_by_index() {
        let mut acc = StreamAccumulator::new(1024);
        let chunks = [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"handoff_to_human","arguments":""}}]},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"depart"}}]},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ment\":\"billing\"}"}}]},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            "[DONE]",
        ];
        for chunk in chunks {
            assert_eq!(acc.push(chunk).unwrap(), None);
        }
        let completion = acc.finish().unwrap();
        assert_eq!(
            completion.tool_calls,
            [ToolCall {
                name: HANDOFF_TOOL.into(),
                arguments: r#"{"department":"billing"}"#.into()
            }]
        );
    }

    #[test]
    fn a_stream_cut_off_before_done_is_an_error() {
        let mut acc = StreamAccumulator::new(1024);
        acc.push(r#"{"choices":[{"delta":{"content":"Hel"}}]}"#)
            .unwrap();
        assert_eq!(
            acc.finish().unwrap_err().bot_kind(),
            Some(BotErrorKind::Transport)
        );
    }

    #[test]
    fn object_arguments_are_accepted() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"handoff_to_human","arguments":{"reason":"angry"}}}]}}]}"#;
        let completion = parse_response(body).unwrap();
        assert_eq!(completion.tool_calls[0].arguments, r#"{"reason":"angry"}"#);
    }
}
