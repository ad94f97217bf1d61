//! The built-in templates.

use serde_json::{Value, json};

use super::types::{Template, TemplateSummary};

/// Id of the built-in demo template "encore music video" (1280×720 mp4).
///
/// Elements and modification keys:
///
/// | element | type | keys |
/// |---|---|---|
/// | `Background` | shape | `Background.fill_color` |
/// | `Audio` | audio | `Audio.source` (audio URL; its length sets the video length) |
/// | `Title` | text | `Title` or `Title.text`; `Title.time`, `Title.duration` (default 0 s / 4 s) |
/// | `Captions` | text | `Captions` or `Captions.text` (the caption/lyrics text, lines separated by `\n`); `Captions.time`, `Captions.duration` (seconds, numbers: when the captions block shows); `Captions.transcript_source` (subtitles: word-timing keyframes `{time, duration, value, sentence}`, times from the element's start) and the other `transcript_*` properties of text elements |
///
/// Any other property of these elements (`fill_color`, `font_size`, …) is accepted too.
/// Keys naming an unknown element or property are ignored, as by Creatomate v1: the render
/// still succeeds, a warning is logged and the ledger lists the keys
/// ([`BilledJob::ignored_modifications`](crate::BilledJob)).
pub const DEMO_TEMPLATE_ID: &str = "5e1f3c2a-8b4d-4e6f-9a0b-1c2d3e4f5a6b";

/// Id of the built-in "encore vertical music video" (1080×1920 mp4, same elements).
pub const VERTICAL_TEMPLATE_ID: &str = "c3b1f0e2-5d4a-4f7b-8e6c-2a9d1b0e7f43";

const CREATED: &str = "2026-01-01 12:00:00.000 +0000";

/// Properties accepted on any element in addition to those in its source.
pub(crate) const COMMON_PROPERTIES: &[&str] = &[
    "source",
    "text",
    "time",
    "duration",
    "x",
    "y",
    "width",
    "height",
    "fill_color",
    "opacity",
    "volume",
    "visible",
    "font_family",
    "font_size",
    "font_weight",
    "background_color",
    "animations",
    "x_alignment",
    "y_alignment",
];

fn source(width: u32, height: u32) -> Value {
    json!({
        "output_format": "mp4",
        "width": width,
        "height": height,
        "frame_rate": 30,
        "elements": [
            {
                "name": "Background", "type": "shape", "track": 1, "time": 0,
                "x": "50%", "y": "50%", "width": "100%", "height": "100%",
                "fill_color": "#14142b"
            },
            {
                "name": "Audio", "type": "audio", "track": 2, "time": 0,
                "source": "", "duration": null, "audio_fade_out": "2 s", "volume": "100%"
            },
            {
                "name": "Title", "type": "text", "track": 3, "time": 0, "duration": 4,
                "x": "50%", "y": "40%", "width": "80%",
                "x_alignment": "50%", "y_alignment": "50%",
                "text": "Song title", "font_family": "Montserrat", "font_weight": "700",
                "font_size": "8 vmin", "fill_color": "#ffffff"
            },
            {
                "name": "Captions", "type": "text", "track": 4, "time": 4, "duration": null,
                "x": "50%", "y": "82%", "width": "86%",
                "x_alignment": "50%", "y_alignment": "50%",
                "text": "", "font_family": "Montserrat", "font_size": "5 vmin",
                "fill_color": "#ffffff", "background_color": "rgba(0,0,0,0.45)"
            }
        ]
    })
}

/// All built-in templates with their source.
pub(crate) fn all() -> Vec<Template> {
    vec![
        Template {
            id: DEMO_TEMPLATE_ID.into(),
            name: "encore music video".into(),
            tags: vec!["encore".into(), "music-video".into()],
            created_at: CREATED.into(),
            updated_at: CREATED.into(),
            source: source(1280, 720),
            extra: serde_json::Map::new(),
        },
        Template {
            id: VERTICAL_TEMPLATE_ID.into(),
            name: "encore vertical music video".into(),
            tags: vec!["encore".into(), "vertical".into()],
            created_at: CREATED.into(),
            updated_at: CREATED.into(),
            source: source(1080, 1920),
            extra: serde_json::Map::new(),
        },
    ]
}

/// The list form.
pub(crate) fn summaries() -> Vec<TemplateSummary> {
    all()
        .into_iter()
        .map(|t| TemplateSummary {
            id: t.id,
            name: t.name,
            tags: t.tags,
            created_at: t.created_at,
            updated_at: t.updated_at,
            extra: serde_json::Map::new(),
        })
        .collect()
}

/// A template by id.
pub(crate) fn find(id: &str) -> Option<Template> {
    all().into_iter().find(|t| t.id == id)
}
