//! OpenAI Responses API wire types: only what a structured-output call sends and reads.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire;

/// `POST /v1/responses` with a JSON-schema text format.
#[derive(Serialize, Debug)]
pub(crate) struct CreateResponse<'a> {
    pub(crate) model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) instructions: Option<&'a str>,
    pub(crate) input: [InputMessage<'a>; 1],
    pub(crate) text: TextConfig<'a>,
    /// Always `false`: the API keeps every response server-side unless told otherwise (`store`
    /// defaults to `true`, openai/openai-openapi `CreateResponse`), and encore never reads one
    /// back (no `previous_response_id`, no `background`), so keeping a copy of the business's
    /// details there buys nothing.
    pub(crate) store: bool,
    /// The ceiling on billed output tokens, reasoning included (`openai.max_output_tokens`):
    /// without one a runaway answer is billed up to the model's own limit.
    pub(crate) max_output_tokens: u32,
}

#[derive(Serialize, Debug)]
pub(crate) struct InputMessage<'a> {
    pub(crate) role: &'static str,
    pub(crate) content: [InputText<'a>; 1],
}

#[derive(Serialize, Debug)]
pub(crate) struct InputText<'a> {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) text: &'a str,
}

#[derive(Serialize, Debug)]
pub(crate) struct TextConfig<'a> {
    pub(crate) format: JsonSchemaFormat<'a>,
}

#[derive(Serialize, Debug)]
pub(crate) struct JsonSchemaFormat<'a> {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) name: &'a str,
    pub(crate) schema: &'a Value,
    pub(crate) strict: bool,
}

/// The response object, leniently: unknown output items and content parts are skipped.
#[derive(Deserialize, Debug)]
pub(crate) struct ResponseObject {
    #[serde(default, deserialize_with = "wire::opt_string")]
    pub(crate) id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) error: Option<ResponseError>,
    #[serde(default)]
    pub(crate) incomplete_details: Option<IncompleteDetails>,
    /// The ceiling the request set, echoed back (for an error that names it).
    #[serde(default, deserialize_with = "wire::opt_u64")]
    pub(crate) max_output_tokens: Option<u64>,
    #[serde(default, deserialize_with = "wire::null_default")]
    pub(crate) output: Vec<OutputItem>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct ResponseError {
    #[serde(default, deserialize_with = "wire::opt_string")]
    pub(crate) code: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    pub(crate) message: Option<String>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct IncompleteDetails {
    #[serde(default, deserialize_with = "wire::opt_string")]
    pub(crate) reason: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(tag = "type")]
pub(crate) enum OutputItem {
    #[serde(rename = "message")]
    Message {
        #[serde(default, deserialize_with = "wire::null_default")]
        content: Vec<ContentPart>,
    },
    /// `reasoning`, tool calls, …
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Debug)]
#[serde(tag = "type")]
pub(crate) enum ContentPart {
    #[serde(rename = "output_text")]
    OutputText {
        #[serde(default, deserialize_with = "wire::string")]
        text: String,
    },
    #[serde(rename = "refusal")]
    Refusal {
        #[serde(default, deserialize_with = "wire::string")]
        refusal: String,
    },
    #[serde(other)]
    Other,
}

impl ResponseObject {
    /// The SDKs' `output_text`: every `output_text` part of every `message` item, concatenated
    /// with no separator (never just `output[0]`).
    pub(crate) fn output_text(&self) -> String {
        let mut text = String::new();
        for item in &self.output {
            if let OutputItem::Message { content } = item {
                for part in content {
                    if let ContentPart::OutputText { text: t } = part {
                        text.push_str(t);
                    }
                }
            }
        }
        text
    }

    /// The first refusal, if the model refused.
    pub(crate) fn refusal(&self) -> Option<&str> {
        self.output.iter().find_map(|item| match item {
            OutputItem::Message { content } => content.iter().find_map(|part| match part {
                ContentPart::Refusal { refusal } => Some(refusal.as_str()),
                _ => None,
            }),
            OutputItem::Other => None,
        })
    }
}

/// `{"error": {"message", "type", "param", "code"}}`.
#[derive(Deserialize, Debug)]
pub(crate) struct ErrorBody {
    pub(crate) error: ApiError,
}

#[derive(Deserialize, Debug)]
pub(crate) struct ApiError {
    #[serde(default, deserialize_with = "wire::opt_string")]
    pub(crate) message: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "wire::opt_string")]
    pub(crate) kind: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    pub(crate) code: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_text_joins_every_part_of_every_message_and_skips_the_rest() {
        let r: ResponseObject = serde_json::from_value(serde_json::json!({
            "id": "resp_1", "status": "completed",
            "output": [
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "message", "role": "assistant", "content": [
                    {"type": "output_text", "text": "{\"a\":", "annotations": []},
                    {"type": "something_new"},
                ]},
                {"type": "web_search_call"},
                {"type": "message", "content": [{"type": "output_text", "text": "1}"}]}
            ]
        }))
        .unwrap();
        assert_eq!(r.output_text(), "{\"a\":1}");
        assert_eq!(r.refusal(), None);
    }

    #[test]
    fn refusals_are_found() {
        let r: ResponseObject = serde_json::from_value(serde_json::json!({
            "status": "completed",
            "output": [{"type": "message", "content": [{"type": "refusal", "refusal": "I can't help"}]}]
        }))
        .unwrap();
        assert_eq!(r.output_text(), "");
        assert_eq!(r.refusal(), Some("I can't help"));
    }
}
