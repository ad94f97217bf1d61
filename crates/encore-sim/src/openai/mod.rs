//! The OpenAI Responses API: `POST /v1/responses` with structured outputs.
//!
//! Answers a full response object whose message holds one `output_text` part. With
//! `text.format.type = "json_schema"` the text is JSON generated from the sent schema
//! (valid against it), deterministic per (seed, request content); string properties are
//! filled by name (`*lyrics*` → sectioned lyrics, `*title*` → a title, `*style*`/`*tags*` →
//! style tags), in Korean when the prompt contains Hangul. `max_output_tokens` below the
//! generated size yields `status: "incomplete"` with truncated text, as upstream.
//! Every answer carries `x-request-id` and the six `x-ratelimit-*` headers.

pub(crate) mod error;
mod shape;
pub(crate) mod store;
pub mod types;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::auth::{self, AuthError};
use crate::ids;
use crate::ledger::JobKind;
use crate::outcome::OpenaiOutcome;
use crate::request_ctx::RequestCtx;
use crate::schema_gen;
use crate::state::{NewJob, SimState, lock};
use crate::text::{self, TextCtx};
use crate::timefmt;

use self::types::{
    InputTokensDetails, OutputTokensDetails, ResponseObject, TextConfig, TextFormat, Usage,
};

pub use self::shape::{INVALID_PROMPT_MESSAGE, REFUSAL_TEXT, SERVER_ERROR_MESSAGE};
pub use self::store::{RATELIMIT_REQUESTS, RATELIMIT_TOKENS};

use self::error::{api_error, invalid, request_id};
use self::shape::{ItemIds, tokens};
use self::store::ratelimit_headers;

fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(8))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

const ROLES: &[&str] = &["user", "assistant", "system", "developer"];

/// Validates the body; returns the texts of the input messages as (role, text).
fn validate(state: &SimState, body: &Value) -> Result<Vec<(String, String)>, Box<Response>> {
    let err = |message: String, param: &str, code: &str| {
        Box::new(invalid(state, &message, Some(param), Some(code)))
    };
    let Some(obj) = body.as_object() else {
        return Err(Box::new(invalid(
            state,
            &format!(
                "Invalid type for request body: expected an object, but got {} instead.",
                type_name(body)
            ),
            None,
            Some("invalid_type"),
        )));
    };
    match obj.get("model") {
        None | Some(Value::Null) => {
            return Err(err(
                "Missing required parameter: 'model'.".into(),
                "model",
                "missing_required_parameter",
            ));
        }
        Some(Value::String(m)) if m.trim().is_empty() => {
            return Err(err(
                "Invalid value for 'model': expected a non-empty model id.".into(),
                "model",
                "invalid_value",
            ));
        }
        Some(Value::String(_)) => {}
        Some(other) => {
            return Err(err(
                format!(
                    "Invalid type for 'model': expected a string, but got {} instead.",
                    type_name(other)
                ),
                "model",
                "invalid_type",
            ));
        }
    }
    let mut texts = Vec::new();
    match obj.get("input") {
        None | Some(Value::Null) => {
            return Err(err(
                "Missing required parameter: 'input'.".into(),
                "input",
                "missing_required_parameter",
            ));
        }
        Some(Value::String(s)) => texts.push(("user".to_owned(), s.clone())),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("input[{i}]");
                let Some(item) = item.as_object() else {
                    return Err(err(
                        format!(
                            "Invalid type for '{p}': expected an input item object, but got {} instead.",
                            type_name(item)
                        ),
                        &p,
                        "invalid_type",
                    ));
                };
                if let Some(kind) = item.get("type").and_then(Value::as_str)
                    && kind != "message"
                {
                    return Err(err(
                        format!(
                            "Invalid value: '{kind}'. encore-sim supports input items of type 'message'."
                        ),
                        &format!("{p}.type"),
                        "invalid_value",
                    ));
                }
                let role = match item.get("role") {
                    Some(Value::String(r)) if ROLES.contains(&r.as_str()) => r.clone(),
                    Some(Value::String(r)) => {
                        return Err(err(
                            format!(
                                "Invalid value: '{r}'. Supported values are: 'assistant', 'system', 'developer', and 'user'."
                            ),
                            &format!("{p}.role"),
                            "invalid_value",
                        ));
                    }
                    _ => {
                        return Err(err(
                            format!("Missing required parameter: '{p}.role'."),
                            &format!("{p}.role"),
                            "missing_required_parameter",
                        ));
                    }
                };
                match item.get("content") {
                    Some(Value::String(s)) => texts.push((role, s.clone())),
                    Some(Value::Array(parts)) => {
                        for (j, part) in parts.iter().enumerate() {
                            let pp = format!("{p}.content[{j}]");
                            let kind = part.get("type").and_then(Value::as_str);
                            match kind {
                                Some("input_text" | "output_text") => {
                                    let Some(t) = part.get("text").and_then(Value::as_str) else {
                                        return Err(err(
                                            format!("Missing required parameter: '{pp}.text'."),
                                            &format!("{pp}.text"),
                                            "missing_required_parameter",
                                        ));
                                    };
                                    texts.push((role.clone(), t.to_owned()));
                                }
                                Some("input_image" | "input_file" | "refusal") => {}
                                Some(other) => {
                                    return Err(err(
                                        format!(
                                            "Invalid value: '{other}'. Supported values are: 'input_text', 'input_image', 'output_text', 'refusal', and 'input_file'."
                                        ),
                                        &format!("{pp}.type"),
                                        "invalid_value",
                                    ));
                                }
                                None => {
                                    return Err(err(
                                        format!("Missing required parameter: '{pp}.type'."),
                                        &format!("{pp}.type"),
                                        "missing_required_parameter",
                                    ));
                                }
                            }
                        }
                    }
                    _ => {
                        return Err(err(
                            format!("Missing required parameter: '{p}.content'."),
                            &format!("{p}.content"),
                            "missing_required_parameter",
                        ));
                    }
                }
            }
        }
        Some(other) => {
            return Err(err(
                format!(
                    "Invalid type for 'input': expected one of a string or array of input items, but got {} instead.",
                    type_name(other)
                ),
                "input",
                "invalid_type",
            ));
        }
    }
    if obj.get("stream") == Some(&Value::Bool(true)) {
        return Err(err(
            "encore-sim does not support streaming responses; omit 'stream' or set it to false."
                .into(),
            "stream",
            "unsupported_value",
        ));
    }
    if let Some(max) = obj.get("max_output_tokens").filter(|v| !v.is_null()) {
        match max.as_u64() {
            Some(n) if n >= 16 => {}
            _ => {
                return Err(err(
                    format!(
                        "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got {max} instead."
                    ),
                    "max_output_tokens",
                    "integer_below_min_value",
                ));
            }
        }
    }
    for (key, hi) in [("temperature", 2.0), ("top_p", 1.0)] {
        if let Some(v) = obj.get(key).filter(|v| !v.is_null())
            && !v.as_f64().is_some_and(|x| (0.0..=hi).contains(&x))
        {
            return Err(err(
                format!(
                    "Invalid '{key}': expected a number between 0 and {hi}, but got {v} instead."
                ),
                key,
                "invalid_value",
            ));
        }
    }
    if let Some(text) = obj.get("text").filter(|v| !v.is_null()) {
        validate_text(state, text, &texts)?;
    }
    Ok(texts)
}

fn validate_text(
    state: &SimState,
    text: &Value,
    texts: &[(String, String)],
) -> Result<(), Box<Response>> {
    let err = |message: String, param: &str, code: &str| {
        Box::new(invalid(state, &message, Some(param), Some(code)))
    };
    let Some(text) = text.as_object() else {
        return Err(err(
            format!(
                "Invalid type for 'text': expected an object, but got {} instead.",
                type_name(text)
            ),
            "text",
            "invalid_type",
        ));
    };
    let Some(format) = text.get("format").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let Some(format) = format.as_object() else {
        return Err(err(
            format!(
                "Invalid type for 'text.format': expected an object, but got {} instead.",
                type_name(format)
            ),
            "text.format",
            "invalid_type",
        ));
    };
    match format.get("type").and_then(Value::as_str) {
        None => Err(err(
            "Missing required parameter: 'text.format.type'.".into(),
            "text.format.type",
            "missing_required_parameter",
        )),
        Some("text") => Ok(()),
        Some("json_object") => {
            if texts.iter().any(|(_, t)| t.to_lowercase().contains("json")) {
                Ok(())
            } else {
                Err(err(
                    "'input' must contain the word 'json' in some form, to use 'text.format' of type 'json_object'.".into(),
                    "input",
                    "invalid_value",
                ))
            }
        }
        Some("json_schema") => {
            let name = match format.get("name") {
                Some(Value::String(n)) => n,
                None | Some(Value::Null) => {
                    return Err(err(
                        "Missing required parameter: 'text.format.name'.".into(),
                        "text.format.name",
                        "missing_required_parameter",
                    ));
                }
                Some(other) => {
                    return Err(err(
                        format!(
                            "Invalid type for 'text.format.name': expected a string, but got {} instead.",
                            type_name(other)
                        ),
                        "text.format.name",
                        "invalid_type",
                    ));
                }
            };
            if name.chars().count() > 64 {
                return Err(err(
                    format!(
                        "Invalid 'text.format.name': string too long. Expected a string with maximum length 64, but got a string with length {} instead.",
                        name.chars().count()
                    ),
                    "text.format.name",
                    "string_above_max_length",
                ));
            }
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(err(
                    "Invalid 'text.format.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.".into(),
                    "text.format.name",
                    "invalid_value",
                ));
            }
            let schema = match format.get("schema") {
                Some(s @ Value::Object(_)) => s,
                None | Some(Value::Null) => {
                    return Err(err(
                        "Missing required parameter: 'text.format.schema'.".into(),
                        "text.format.schema",
                        "missing_required_parameter",
                    ));
                }
                Some(other) => {
                    return Err(err(
                        format!(
                            "Invalid type for 'text.format.schema': expected an object, but got {} instead.",
                            type_name(other)
                        ),
                        "text.format.schema",
                        "invalid_type",
                    ));
                }
            };
            match format.get("strict") {
                None | Some(Value::Null | Value::Bool(false)) => Ok(()),
                Some(Value::Bool(true)) => match schema_gen::strict_violation(schema) {
                    None => Ok(()),
                    Some((context, message)) => Err(err(
                        format!(
                            "Invalid schema for response_format '{name}': In context={context}, {message}."
                        ),
                        "text.format.schema",
                        "invalid_json_schema",
                    )),
                },
                Some(other) => Err(err(
                    format!(
                        "Invalid type for 'text.format.strict': expected a boolean, but got {} instead.",
                        type_name(other)
                    ),
                    "text.format.strict",
                    "invalid_type",
                )),
            }
        }
        Some(other) => Err(err(
            format!(
                "Invalid value: '{other}'. Supported values are: 'text', 'json_object', and 'json_schema'."
            ),
            "text.format.type",
            "invalid_value",
        )),
    }
}

/// `POST /v1/responses`.
pub(crate) async fn create_response(
    State(state): State<SimState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = match auth::check(state.config(), &headers) {
        Ok(key) => key,
        Err(AuthError::Missing) => {
            return api_error(
                &state,
                StatusCode::UNAUTHORIZED,
                "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username.",
                "invalid_request_error",
                None,
                None,
            );
        }
        Err(AuthError::Invalid) => {
            let presented = auth::check(&crate::SimConfig::default(), &headers).unwrap_or_default();
            return api_error(
                &state,
                StatusCode::UNAUTHORIZED,
                &format!(
                    "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                    mask_key(&presented)
                ),
                "invalid_request_error",
                None,
                Some("invalid_api_key"),
            );
        }
    };
    let Ok(raw) = serde_json::from_slice::<Value>(&body) else {
        return invalid(
            &state,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
            None,
            None,
        );
    };
    let texts = match validate(&state, &raw) {
        Ok(texts) => texts,
        Err(resp) => return *resp,
    };
    let request: types::CreateResponseRequest = match serde_json::from_value(raw.clone()) {
        Ok(r) => r,
        Err(e) => return invalid(&state, &format!("Invalid request: {e}"), None, None),
    };

    // Deterministic content: seeded by the request content, not by call order, so a
    // replayed request yields the same text.
    let content_key = json!([
        raw.get("model"),
        raw.get("input"),
        raw.get("instructions"),
        raw.get("text")
    ]);
    let mut rng = ids::rng_for_content(
        state.config().seed,
        "openai.output",
        content_key.to_string().as_bytes(),
    );
    let all_text: String = texts
        .iter()
        .map(|(_, t)| t.as_str())
        .chain(request.instructions.as_deref())
        .collect::<Vec<_>>()
        .join("\n");
    let user_text: String = texts
        .iter()
        .filter(|(role, _)| role == "user")
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let mut tctx = TextCtx::from_prompt(if user_text.is_empty() {
        &all_text
    } else {
        &user_text
    });
    // An explicit instruction ("write the song in English") wins over the script the business
    // details happen to be written in, as it would with a real model.
    let lower = all_text.to_lowercase();
    tctx.korean = if lower.contains("in english") {
        false
    } else {
        lower.contains("in korean") || text::has_hangul(&all_text)
    };
    let format = request.text.as_ref().and_then(|t| t.format.clone());
    let output = match &format {
        Some(TextFormat::JsonSchema { schema, .. }) => {
            schema_gen::generate(schema, &mut rng, &tctx).to_string()
        }
        Some(TextFormat::JsonObject) => {
            json!({ "result": text::sentence(&tctx, &mut rng) }).to_string()
        }
        Some(TextFormat::Text) | None => {
            if all_text.to_lowercase().contains("lyric") || all_text.contains("가사") {
                text::lyrics(&tctx, &mut rng, 0, Some(2000))
            } else {
                [
                    text::sentence(&tctx, &mut rng),
                    text::sentence(&tctx, &mut rng),
                ]
                .join(" ")
            }
        }
    };

    let outcomes = lock(&state.inner.faults).scenario().openai.outcomes.clone();
    let outcome = {
        let mut store = lock(&state.inner.openai);
        let outcome = outcomes.get(store.created).copied().unwrap_or_default();
        store.created += 1;
        outcome
    };
    let (resp_id, msg_id) = state.with_ids(|rng| {
        (
            format!("resp_{}", ids::hex(rng, 48)),
            format!("msg_{}", ids::hex(rng, 48)),
        )
    });
    let reasoning_id = if outcome == OpenaiOutcome::Reasoning {
        state.with_ids(|rng| format!("rs_{}", ids::hex(rng, 48)))
    } else {
        String::new()
    };
    let shaped = shape::shape(
        outcome,
        output,
        request.max_output_tokens,
        ItemIds {
            message: msg_id,
            reasoning: reasoning_id,
        },
    );
    let status = shaped.status;
    let input_tokens = tokens(all_text.chars().count()) + 8;
    let output_tokens = shaped.output_tokens;
    let total_tokens = input_tokens + output_tokens;
    let now = timefmt::unix_secs(SimState::wall_now());
    let response = ResponseObject {
        id: resp_id.clone(),
        object: "response".into(),
        created_at: now,
        status: status.into(),
        completed_at: (status == "completed").then_some(now),
        error: shaped.error,
        incomplete_details: shaped.incomplete,
        instructions: request.instructions.clone().map(Value::String),
        max_output_tokens: request.max_output_tokens,
        model: request.model.clone(),
        output: shaped.output,
        parallel_tool_calls: Some(true),
        previous_response_id: None,
        reasoning: Some(json!({ "effort": null, "summary": null })),
        store: Some(request.store.unwrap_or(true)),
        temperature: Some(request.temperature.unwrap_or(1.0)),
        text: Some(TextConfig {
            format: Some(format.unwrap_or(TextFormat::Text)),
            verbosity: Some("medium".into()),
        }),
        tool_choice: Some(json!("auto")),
        tools: Vec::new(),
        top_p: Some(request.top_p.unwrap_or(1.0)),
        truncation: Some("disabled".into()),
        usage: Some(Usage {
            input_tokens,
            input_tokens_details: InputTokensDetails {
                cached_tokens: 0,
                cache_write_tokens: Some(0),
            },
            output_tokens,
            output_tokens_details: OutputTokensDetails {
                reasoning_tokens: shaped.reasoning_tokens,
            },
            total_tokens,
        }),
        user: None,
        metadata: Some(request.metadata.clone().unwrap_or_default()),
        extra: serde_json::Map::new(),
    };
    state.bill(NewJob {
        ready_after_virtual_s: (status == "completed").then_some(0.0),
        final_status: status.to_owned(),
        store: request.store,
        max_output_tokens: request.max_output_tokens,
        ..NewJob::new(
            JobKind::OpenaiResponse,
            resp_id.clone(),
            ctx.seq,
            Instant::now(),
        )
    });
    let (used_requests, used_tokens) =
        lock(&state.inner.openai).record(&key, total_tokens, Instant::now());
    tracing::debug!(key = %auth::key_tag(&key), id = %resp_id, ?outcome, "openai response created");
    let mut resp = (StatusCode::OK, axum::Json(response)).into_response();
    let h = resp.headers_mut();
    h.insert(HeaderName::from_static("x-request-id"), request_id(&state));
    h.insert(
        HeaderName::from_static("openai-processing-ms"),
        HeaderValue::from(output_tokens * 3 + 120),
    );
    h.insert(
        HeaderName::from_static("openai-version"),
        HeaderValue::from_static("2020-10-01"),
    );
    ratelimit_headers(h, used_requests, used_tokens);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keys() {
        assert_eq!(mask_key("sk-abcdefghijklmnop"), "sk-********mnop");
        assert_eq!(mask_key("short"), "*****");
    }
}
