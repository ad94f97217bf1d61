//! Creatomate (v1) wire types, snake_case. Responses are read leniently: every field but `id`
//! and `status` is optional, unknown statuses are kept as strings.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::wire;

/// The body of `POST /v1/renders` from a template.
///
/// ```
/// use encore_clients::creatomate::RenderRequest;
///
/// let req = RenderRequest::new("9e90d011-52e6-49dc-8a7a-5f25058c2568")
///     .modify("Title", "Night City")
///     .modify("Audio.source", "https://cdn.example/song.mp3");
/// let json = serde_json::to_value(&req).unwrap();
/// assert_eq!(json["modifications"]["Title"], "Night City");
/// assert!(json.get("webhook_url").is_none(), "None fields are not sent");
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct RenderRequest {
    /// The template to render.
    pub template_id: String,
    /// Element name (or `Element.property`) → replacement value.
    #[serde(default)]
    pub modifications: Map<String, Value>,
    /// `mp4`, `gif`, `jpg` or `png`; the template's when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<String>,
    /// Opaque text echoed in the render and its webhook (e.g. a correlation id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    /// Called when the render succeeds or fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
}

impl RenderRequest {
    /// A render of `template_id` with no modifications.
    pub fn new(template_id: impl Into<String>) -> Self {
        RenderRequest {
            template_id: template_id.into(),
            ..RenderRequest::default()
        }
    }

    /// Adds one modification.
    pub fn modify(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.modifications.insert(key.into(), value.into());
        self
    }
}

/// The status of a render. Unknown values (such as v2's `cancelled`) are kept in
/// [`RenderStatus::Other`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RenderStatus {
    /// `planned`: queued.
    Planned,
    /// `waiting`: waiting for a third-party integration.
    Waiting,
    /// `transcribing`: generating subtitles.
    Transcribing,
    /// `rendering`.
    Rendering,
    /// `succeeded`: `url` is downloadable.
    Succeeded,
    /// `failed`: see `error_message`.
    Failed,
    /// Anything else, as sent.
    Other(String),
}

impl RenderStatus {
    /// The wire value, e.g. `"succeeded"`.
    pub fn as_str(&self) -> &str {
        match self {
            RenderStatus::Planned => "planned",
            RenderStatus::Waiting => "waiting",
            RenderStatus::Transcribing => "transcribing",
            RenderStatus::Rendering => "rendering",
            RenderStatus::Succeeded => "succeeded",
            RenderStatus::Failed => "failed",
            RenderStatus::Other(s) => s,
        }
    }

    /// Whether the render will not change any more (`succeeded`, `failed`, or `cancelled`).
    /// Other unknown statuses are treated as still running: keep polling until your deadline.
    pub fn is_terminal(&self) -> bool {
        match self {
            RenderStatus::Succeeded | RenderStatus::Failed => true,
            RenderStatus::Other(s) => s == "cancelled",
            _ => false,
        }
    }

    /// Whether the render ended without a video (`failed` or `cancelled`).
    pub fn is_failure(&self) -> bool {
        match self {
            RenderStatus::Failed => true,
            RenderStatus::Other(s) => s == "cancelled",
            _ => false,
        }
    }
}

impl From<&str> for RenderStatus {
    fn from(s: &str) -> Self {
        match s {
            "planned" => RenderStatus::Planned,
            "waiting" => RenderStatus::Waiting,
            "transcribing" => RenderStatus::Transcribing,
            "rendering" => RenderStatus::Rendering,
            "succeeded" => RenderStatus::Succeeded,
            "failed" => RenderStatus::Failed,
            other => RenderStatus::Other(other.to_owned()),
        }
    }
}

impl Default for RenderStatus {
    fn default() -> Self {
        RenderStatus::Other(String::new())
    }
}

impl fmt::Display for RenderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RenderStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RenderStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(RenderStatus::from(wire::string(d)?.as_str()))
    }
}

/// A render (the answer of `POST /v1/renders` and `GET /v1/renders/{id}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Render {
    /// The render id.
    #[serde(default, deserialize_with = "wire::string")]
    pub id: String,
    /// Where it is.
    #[serde(default)]
    pub status: RenderStatus,
    /// The output file (present early, downloadable once `succeeded`).
    #[serde(default, deserialize_with = "wire::opt_string")]
    pub url: Option<String>,
    /// Why it failed.
    #[serde(default, deserialize_with = "wire::opt_string")]
    pub error_message: Option<String>,
    /// A still of the video, when the template sets a snapshot time.
    #[serde(default, deserialize_with = "wire::opt_string")]
    pub snapshot_url: Option<String>,
    /// Pixels, once done.
    #[serde(default, deserialize_with = "wire::opt_f64")]
    pub width: Option<f64>,
    /// Pixels, once done.
    #[serde(default, deserialize_with = "wire::opt_f64")]
    pub height: Option<f64>,
    /// Seconds, once done.
    #[serde(default, deserialize_with = "wire::opt_f64")]
    pub duration: Option<f64>,
    /// Frames per second, once done.
    #[serde(default, deserialize_with = "wire::opt_f64")]
    pub frame_rate: Option<f64>,
    /// Bytes, once done.
    #[serde(default, deserialize_with = "wire::opt_u64")]
    pub file_size: Option<u64>,
    /// The template rendered.
    #[serde(default, deserialize_with = "wire::opt_string")]
    pub template_id: Option<String>,
    /// The template's name.
    #[serde(default, deserialize_with = "wire::opt_string")]
    pub template_name: Option<String>,
    /// `mp4`, `gif`, `jpg` or `png`.
    #[serde(default, deserialize_with = "wire::opt_string")]
    pub output_format: Option<String>,
    /// The request's metadata, echoed.
    #[serde(default, deserialize_with = "wire::opt_string")]
    pub metadata: Option<String>,
}

/// A template (`GET /v1/templates` omits `source`; `GET /v1/templates/{id}` includes it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Template {
    /// The template id.
    #[serde(default, deserialize_with = "wire::string")]
    pub id: String,
    /// Its name.
    #[serde(default, deserialize_with = "wire::string")]
    pub name: String,
    /// Its tags.
    #[serde(default, deserialize_with = "wire::null_default")]
    pub tags: Vec<String>,
    /// The RenderScript (single-template answers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Value>,
    /// As sent (`2026-01-01 12:00:00.000 +0200` in the docs).
    #[serde(default, deserialize_with = "wire::opt_string")]
    pub created_at: Option<String>,
    /// As sent.
    #[serde(default, deserialize_with = "wire::opt_string")]
    pub updated_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_render_parses() {
        let r: Render = serde_json::from_value(serde_json::json!({
            "id": "69ba407b", "status": "succeeded",
            "url": "https://cdn.creatomate.com/renders/69ba407b.mp4",
            "snapshot_url": "https://cdn.creatomate.com/snapshots/69ba407b.jpg",
            "template_id": "9e90d011", "template_name": "Your Template Name", "template_tags": [],
            "output_format": "mp4", "render_scale": 1, "width": 720, "height": 900,
            "frame_rate": 60, "duration": 15.5, "file_size": 751_089
        }))
        .unwrap();
        assert_eq!(r.status, RenderStatus::Succeeded);
        assert!(r.status.is_terminal() && !r.status.is_failure());
        assert_eq!(r.width, Some(720.0));
        assert_eq!(r.file_size, Some(751_089));
        let back: Render = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn statuses_and_odd_renders() {
        for s in [
            "planned",
            "waiting",
            "transcribing",
            "rendering",
            "succeeded",
            "failed",
            "cancelled",
            "queued_x",
        ] {
            let status = RenderStatus::from(s);
            assert_eq!(status.as_str(), s);
        }
        assert!(RenderStatus::from("cancelled").is_terminal());
        assert!(!RenderStatus::from("queued_x").is_terminal());
        assert!(!RenderStatus::Waiting.is_terminal());
        let r: Render = serde_json::from_value(serde_json::json!({
            "id": "x", "status": "failed", "error_message": "Source could not be downloaded",
            "url": null, "file_size": "12"
        }))
        .unwrap();
        assert!(r.status.is_failure());
        assert_eq!(r.url, None);
        assert_eq!(r.file_size, Some(12));
    }

    #[test]
    fn templates_parse() {
        let t: Vec<Template> = serde_json::from_value(serde_json::json!([
            {"id": "c937d125", "name": "My Template", "tags": ["My", "Tags"],
             "created_at": "2026-01-01 12:00:00.000 +0200", "updated_at": null},
            {"id": "d", "name": null, "tags": null, "source": {"output_format": "mp4"}}
        ]))
        .unwrap();
        assert_eq!(t[0].tags, ["My", "Tags"]);
        assert_eq!(t[0].updated_at, None);
        assert!(t[1].tags.is_empty());
        assert!(t[1].source.is_some());
    }
}
