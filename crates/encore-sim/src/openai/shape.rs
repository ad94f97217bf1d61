//! Shaping a response by its scripted [`OpenaiOutcome`]: status, output items, `error`,
//! `incomplete_details` and output token counts.

use super::types::{
    IncompleteDetails, OutputContent, OutputItem, OutputMessage, ReasoningItem, ResponseError,
};
use crate::outcome::OpenaiOutcome;

/// The refusal text of [`OpenaiOutcome::Refusal`].
pub const REFUSAL_TEXT: &str = "I'm sorry, but I can't help with that request.";
/// `error.message` of [`OpenaiOutcome::FailedServerError`].
pub const SERVER_ERROR_MESSAGE: &str =
    "The server had an error while processing your request. Sorry about that!";
/// `error.message` of [`OpenaiOutcome::FailedInvalidPrompt`].
pub const INVALID_PROMPT_MESSAGE: &str = "Invalid prompt: your prompt was flagged as potentially violating our usage policy. Please try again with a different prompt.";

/// Approximate tokens of a text (4 characters each, at least 1).
pub(crate) fn tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4).max(1)
}

/// Ids of the output items.
#[derive(Clone, Debug)]
pub(crate) struct ItemIds {
    pub(crate) message: String,
    /// Only used by [`OpenaiOutcome::Reasoning`].
    pub(crate) reasoning: String,
}

/// A shaped response body.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Shaped {
    pub(crate) status: &'static str,
    pub(crate) output: Vec<OutputItem>,
    pub(crate) error: Option<ResponseError>,
    pub(crate) incomplete: Option<IncompleteDetails>,
    /// Including reasoning tokens.
    pub(crate) output_tokens: u64,
    pub(crate) reasoning_tokens: u64,
}

fn cut(text: &str, max_tokens: u64) -> String {
    text.chars()
        .take(usize::try_from(max_tokens.saturating_mul(4)).unwrap_or(usize::MAX))
        .collect()
}

fn message(id: String, status: &str, content: OutputContent) -> OutputItem {
    OutputItem::Message(OutputMessage {
        id,
        status: status.to_owned(),
        role: "assistant".into(),
        content: vec![content],
        phase: None,
    })
}

fn output_text(text: String) -> OutputContent {
    OutputContent::OutputText {
        text,
        annotations: Vec::new(),
        logprobs: Some(Vec::new()),
    }
}

/// Shapes the answer to a request whose generated text is `text`. A `max_output_tokens`
/// below the output (reasoning included, as upstream counts it) makes any answer with text
/// `incomplete` with reason `max_output_tokens`.
pub(crate) fn shape(
    outcome: OpenaiOutcome,
    text: String,
    max_output_tokens: Option<u64>,
    ids: ItemIds,
) -> Shaped {
    let full = tokens(text.chars().count());
    let failed = |code: &str, message: &str| Shaped {
        status: "failed",
        output: Vec::new(),
        error: Some(ResponseError {
            code: code.to_owned(),
            message: message.to_owned(),
        }),
        incomplete: None,
        output_tokens: 0,
        reasoning_tokens: 0,
    };
    let incomplete = |reason: &str, kept: u64, reasoning: Vec<OutputItem>, reasoning_tokens| {
        let mut output = reasoning;
        output.push(message(
            ids.message.clone(),
            "incomplete",
            output_text(cut(&text, kept)),
        ));
        Shaped {
            status: "incomplete",
            output,
            error: None,
            incomplete: Some(IncompleteDetails {
                reason: reason.to_owned(),
            }),
            output_tokens: kept + reasoning_tokens,
            reasoning_tokens,
        }
    };
    match outcome {
        OpenaiOutcome::FailedServerError => failed("server_error", SERVER_ERROR_MESSAGE),
        OpenaiOutcome::FailedInvalidPrompt => failed("invalid_prompt", INVALID_PROMPT_MESSAGE),
        OpenaiOutcome::IncompleteMaxOutputTokens => {
            let kept = max_output_tokens.unwrap_or(u64::MAX).min(full / 2);
            incomplete("max_output_tokens", kept, Vec::new(), 0)
        }
        OpenaiOutcome::IncompleteContentFilter => {
            incomplete("content_filter", full / 2, Vec::new(), 0)
        }
        OpenaiOutcome::Refusal => {
            let refusal = REFUSAL_TEXT.to_owned();
            let output_tokens = tokens(refusal.chars().count());
            Shaped {
                status: "completed",
                output: vec![message(
                    ids.message,
                    "completed",
                    OutputContent::Refusal { refusal },
                )],
                error: None,
                incomplete: None,
                output_tokens,
                reasoning_tokens: 0,
            }
        }
        OpenaiOutcome::Completed | OpenaiOutcome::Reasoning => {
            let (reasoning, reasoning_tokens) = if outcome == OpenaiOutcome::Reasoning {
                (
                    vec![OutputItem::Reasoning(ReasoningItem {
                        id: ids.reasoning.clone(),
                        summary: Vec::new(),
                        extra: serde_json::Map::new(),
                    })],
                    (full / 2).clamp(32, 1024),
                )
            } else {
                (Vec::new(), 0)
            };
            if let Some(max) = max_output_tokens
                && full + reasoning_tokens > max
            {
                return incomplete(
                    "max_output_tokens",
                    max.saturating_sub(reasoning_tokens),
                    reasoning,
                    reasoning_tokens.min(max),
                );
            }
            let mut output = reasoning;
            output.push(message(ids.message, "completed", output_text(text)));
            Shaped {
                status: "completed",
                output,
                error: None,
                incomplete: None,
                output_tokens: full + reasoning_tokens,
                reasoning_tokens,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> ItemIds {
        ItemIds {
            message: "msg_1".into(),
            reasoning: "rs_1".into(),
        }
    }

    fn text_of(s: &Shaped) -> String {
        s.output
            .iter()
            .filter_map(|i| match i {
                OutputItem::Message(m) => Some(m),
                OutputItem::Reasoning(_) => None,
            })
            .flat_map(|m| &m.content)
            .filter_map(|c| match c {
                OutputContent::OutputText { text, .. } => Some(text.clone()),
                OutputContent::Refusal { .. } => None,
            })
            .collect()
    }

    #[test]
    fn each_outcome_has_its_shape() {
        let text = "x".repeat(400); // 100 tokens
        let s = shape(OpenaiOutcome::Completed, text.clone(), None, ids());
        assert_eq!(
            (s.status, s.output_tokens, text_of(&s).len()),
            ("completed", 100, 400)
        );
        let s = shape(OpenaiOutcome::Reasoning, text.clone(), None, ids());
        assert!(matches!(s.output[0], OutputItem::Reasoning(_)));
        assert!(matches!(s.output[1], OutputItem::Message(_)));
        assert_eq!((s.reasoning_tokens, s.output_tokens), (50, 150));
        let s = shape(OpenaiOutcome::Refusal, text.clone(), None, ids());
        assert_eq!(text_of(&s), "");
        assert!(
            matches!(&s.output[0], OutputItem::Message(m) if matches!(m.content[0], OutputContent::Refusal { .. }))
        );
        let s = shape(OpenaiOutcome::FailedServerError, text.clone(), None, ids());
        assert_eq!(
            (s.status, s.error.unwrap().code.as_str()),
            ("failed", "server_error")
        );
        assert!(s.output.is_empty());
        let s = shape(
            OpenaiOutcome::FailedInvalidPrompt,
            text.clone(),
            None,
            ids(),
        );
        assert_eq!(s.error.unwrap().code, "invalid_prompt");
        let s = shape(
            OpenaiOutcome::IncompleteContentFilter,
            text.clone(),
            None,
            ids(),
        );
        assert_eq!(s.incomplete.as_ref().unwrap().reason, "content_filter");
        assert_eq!(text_of(&s).len(), 200);
        let s = shape(
            OpenaiOutcome::IncompleteMaxOutputTokens,
            text.clone(),
            Some(20),
            ids(),
        );
        assert_eq!((s.status, s.output_tokens), ("incomplete", 20));
        assert_eq!(s.incomplete.unwrap().reason, "max_output_tokens");
    }

    #[test]
    fn small_max_output_tokens_cuts_any_text() {
        let text = "y".repeat(400);
        let s = shape(OpenaiOutcome::Completed, text.clone(), Some(30), ids());
        assert_eq!((s.status, text_of(&s).len()), ("incomplete", 120));
        let s = shape(OpenaiOutcome::Reasoning, text.clone(), Some(60), ids());
        assert_eq!(s.status, "incomplete");
        assert_eq!(s.output_tokens, 60, "reasoning counts toward the limit");
        let s = shape(OpenaiOutcome::Completed, text, Some(100), ids());
        assert_eq!(s.status, "completed", "exactly at the limit");
    }
}
