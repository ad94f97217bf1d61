//! Creatomate v1 wire types (snake_case).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /v1/renders` body.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RenderRequest {
    /// Template to render.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    /// Render every template having all these tags (v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// RenderScript instead of a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Value>,
    /// `"Element"` / `"Element.property"` → value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modifications: Option<Map<String, Value>>,
    /// `jpg` | `png` | `gif` | `mp4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<String>,
    /// mp4: 1–60, gif: 1–15.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<f64>,
    /// 0.1–10 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render_scale: Option<f64>,
    /// Maximum width (overrides `render_scale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_width: Option<u32>,
    /// Maximum height (overrides `render_scale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_height: Option<u32>,
    /// Called on success or failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Opaque string echoed back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    /// Any other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The render object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Render {
    /// UUID.
    pub id: String,
    /// `planned`, `waiting`, `transcribing`, `rendering`, `succeeded`, `failed`.
    pub status: String,
    /// Only when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Output URL (downloadable once succeeded).
    #[serde(default)]
    pub url: String,
    /// Snapshot URL (only with a template `snapshot_time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_url: Option<String>,
    /// Template id, when rendered from a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    /// Template name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
    /// Template tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_tags: Option<Vec<String>>,
    /// Output format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<String>,
    /// Render scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render_scale: Option<f64>,
    /// Pixels, after completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Pixels, after completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Frames per second, after completion (video/gif).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<f64>,
    /// Seconds, after completion (video/gif).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Bytes, after completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
    /// Echo of the modifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modifications: Option<Map<String, Value>>,
    /// Echo of the webhook URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Echo of the metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    /// Any other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An entry of `GET /v1/templates` (no `source`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateSummary {
    /// UUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `"2026-01-01 12:00:00.000 +0200"` form.
    #[serde(default)]
    pub created_at: String,
    /// Same form.
    #[serde(default)]
    pub updated_at: String,
    /// Any other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `GET /v1/templates/{id}`: the summary fields plus the RenderScript `source`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Template {
    /// UUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Creation time.
    #[serde(default)]
    pub created_at: String,
    /// Update time.
    #[serde(default)]
    pub updated_at: String,
    /// RenderScript.
    pub source: Value,
    /// Any other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Error body `{"hint": "…"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Human-readable hint.
    pub hint: String,
    /// Optional documentation link (read by the PHP SDK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_url: Option<String>,
}
