//! OpenAI Responses API wire types (the subset encore uses), shaped after the published
//! spec. Response types keep unknown fields in `extra` so documented JSON round-trips.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /v1/responses` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateResponseRequest {
    /// Model id, e.g. `gpt-4o-2024-08-06`.
    pub model: String,
    /// A string or a list of input items.
    pub input: Input,
    /// System-level instructions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Output format configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextConfig>,
    /// Upper bound on generated tokens (>= 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// Sampling temperature (0–2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling (0–1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Whether to store the response (default true upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    /// Streaming (not supported by the simulator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Any other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `input`: a plain string or a list of items.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Input {
    /// A single user message.
    Text(String),
    /// Messages.
    Items(Vec<InputItem>),
}

/// An input message (`EasyInputMessage`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputItem {
    /// `"message"` (optional on the wire).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `user`, `assistant`, `system` or `developer`.
    pub role: String,
    /// Text or content parts.
    pub content: MessageContent,
}

/// Message content: a string or parts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Content parts.
    Parts(Vec<ContentPart>),
}

/// A content part such as `{ "type": "input_text", "text": "…" }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContentPart {
    /// `input_text`, `output_text`, `input_image`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Text of text parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Any other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `text`: output configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    /// The output format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<TextFormat>,
    /// `low` | `medium` | `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<String>,
}

/// `text.format`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TextFormat {
    /// Plain text.
    Text,
    /// Structured output conforming to `schema`.
    JsonSchema {
        /// `[a-zA-Z0-9_-]{1,64}`.
        name: String,
        /// The JSON Schema.
        schema: Value,
        /// Strict schema adherence.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
        /// Description of the format.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    /// Any JSON object.
    JsonObject,
}

/// The response object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseObject {
    /// `resp_…`.
    pub id: String,
    /// Always `"response"`.
    pub object: String,
    /// Unix seconds.
    pub created_at: u64,
    /// `completed`, `failed`, `in_progress`, `cancelled`, `queued`, `incomplete`.
    pub status: String,
    /// Unix seconds when completed.
    #[serde(default)]
    pub completed_at: Option<u64>,
    /// Set when `status = failed`.
    #[serde(default)]
    pub error: Option<ResponseError>,
    /// Set when `status = incomplete`.
    #[serde(default)]
    pub incomplete_details: Option<IncompleteDetails>,
    /// Echo of `instructions`.
    #[serde(default)]
    pub instructions: Option<Value>,
    /// Echo of `max_output_tokens`.
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    /// Model used.
    pub model: String,
    /// Output items; never assume `output[0]` is the message.
    pub output: Vec<OutputItem>,
    /// Echo.
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    /// Echo.
    #[serde(default)]
    pub previous_response_id: Option<String>,
    /// Reasoning configuration echo.
    #[serde(default)]
    pub reasoning: Option<Value>,
    /// Echo of `store`.
    #[serde(default)]
    pub store: Option<bool>,
    /// Echo of `temperature`.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Echo of `text`.
    #[serde(default)]
    pub text: Option<TextConfig>,
    /// Echo of `tool_choice`.
    #[serde(default)]
    pub tool_choice: Option<Value>,
    /// Echo of `tools`.
    #[serde(default)]
    pub tools: Vec<Value>,
    /// Echo of `top_p`.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// `disabled` | `auto`.
    #[serde(default)]
    pub truncation: Option<String>,
    /// Token usage.
    #[serde(default)]
    pub usage: Option<Usage>,
    /// Echo of `user`.
    #[serde(default)]
    pub user: Option<String>,
    /// Echo of `metadata`.
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// Any other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ResponseObject {
    /// The SDKs' `output_text`: every `output_text` part of every message, concatenated.
    pub fn output_text(&self) -> String {
        self.output
            .iter()
            .filter_map(|item| match item {
                OutputItem::Message(m) => Some(m),
                OutputItem::Reasoning(_) => None,
            })
            .flat_map(|m| m.content.iter())
            .filter_map(|part| match part {
                OutputContent::OutputText { text, .. } => Some(text.as_str()),
                OutputContent::Refusal { .. } => None,
            })
            .collect()
    }
}

/// `error` of a failed response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseError {
    /// e.g. `server_error`, `rate_limit_exceeded`, `invalid_prompt`.
    pub code: String,
    /// Description.
    pub message: String,
}

/// `incomplete_details`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncompleteDetails {
    /// `max_output_tokens` | `content_filter`.
    pub reason: String,
}

/// An output item, tagged by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    /// An assistant message.
    Message(OutputMessage),
    /// A reasoning item (emitted before the message by reasoning models).
    Reasoning(ReasoningItem),
}

/// An assistant message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputMessage {
    /// `msg_…`.
    pub id: String,
    /// `in_progress` | `completed` | `incomplete`.
    pub status: String,
    /// Always `assistant`.
    pub role: String,
    /// Content parts.
    pub content: Vec<OutputContent>,
    /// `commentary` | `final_answer` (newer API versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

/// A reasoning item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReasoningItem {
    /// `rs_…`.
    pub id: String,
    /// Summary parts.
    #[serde(default)]
    pub summary: Vec<Value>,
    /// Any other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A message content part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputContent {
    /// Generated text (JSON text for structured outputs).
    OutputText {
        /// The text.
        text: String,
        /// Annotations (citations…).
        #[serde(default)]
        annotations: Vec<Value>,
        /// Log probabilities, when requested.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        logprobs: Option<Vec<Value>>,
    },
    /// The model refused.
    Refusal {
        /// Explanation.
        refusal: String,
    },
}

/// Token usage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens.
    pub input_tokens: u64,
    /// Input breakdown.
    #[serde(default)]
    pub input_tokens_details: InputTokensDetails,
    /// Output tokens.
    pub output_tokens: u64,
    /// Output breakdown.
    #[serde(default)]
    pub output_tokens_details: OutputTokensDetails,
    /// Sum.
    pub total_tokens: u64,
}

/// `usage.input_tokens_details`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    /// Cached input tokens.
    #[serde(default)]
    pub cached_tokens: u64,
    /// Cache writes (2026 specs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<u64>,
}

/// `usage.output_tokens_details`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    /// Reasoning tokens.
    #[serde(default)]
    pub reasoning_tokens: u64,
}

/// HTTP error body `{"error": {…}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error.
    pub error: ApiError,
}

/// The four documented error keys (`param` and `code` are nullable).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    /// Human-readable message.
    pub message: String,
    /// e.g. `invalid_request_error`, `insufficient_quota`, `server_error`, `tokens`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The offending parameter, e.g. `text.format.schema`.
    pub param: Option<String>,
    /// e.g. `rate_limit_exceeded`, `invalid_api_key`.
    pub code: Option<String>,
}
