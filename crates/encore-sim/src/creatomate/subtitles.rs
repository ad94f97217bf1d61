//! Subtitles: a text element whose `transcript_source` is set, as Creatomate documents it
//! (<https://creatomate.com/llms/subtitles.md>, "Subtitles").
//!
//! `transcript_source` names a media element to transcribe, holds an HTTP URL or a raw
//! SRT/WebVTT string, or brings its own word timings as a keyframe array: one keyframe per word,
//! `{ "time": 0.64, "duration": 0.08, "value": "It" }`, `time` in seconds from the text
//! element's own start, `duration` (1 s when omitted) how long the word is spoken, `value` the
//! word, and an optional `"sentence": 1, 2, …` grouping words. The simulator checks a keyframe
//! array and renders it as [`SubtitleLine`]s — a sentence per line, a keyframe without one as
//! a line of its own — which the ledger lists per render; strings are accepted as they are (no
//! transcription is simulated). Keyframe times may be numbers or `"2.5 s"` strings, as
//! RenderScript times are elsewhere.
//!
//! Undocumented, so chosen here: an array with a keyframe that is not an object, or lacks a
//! usable `time` or a string `value`, or has a negative or non-numeric `duration` or
//! `sentence`, is ignored as a whole (listed in the ledger's `ignored_modifications`, like any
//! modification Creatomate would not apply), rather than failing the render.

use serde_json::Value;

use crate::ledger::SubtitleLine;

/// The text-element properties that drive subtitles; accepted on every text element.
pub(crate) const TRANSCRIPT_PROPERTIES: &[&str] = &[
    "transcript_source",
    "transcript_effect",
    "transcript_split",
    "transcript_placement",
    "transcript_maximum_length",
    "transcript_color",
];

/// Creatomate's default keyframe `duration`, seconds.
const DEFAULT_DURATION_S: f64 = 1.0;

/// One word timing of a `transcript_source` keyframe array.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Keyframe {
    pub(crate) time: f64,
    pub(crate) duration: f64,
    pub(crate) value: String,
    pub(crate) sentence: Option<u64>,
}

/// What a `transcript_source` value is: `Ok(None)` for a string (an element name, URL or
/// SRT/WebVTT text), `Ok(Some(keyframes))` for a valid keyframe array, or why it cannot be
/// used.
pub(crate) fn parse(value: &Value) -> Result<Option<Vec<Keyframe>>, String> {
    match value {
        Value::String(_) => Ok(None),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| keyframe(item).map_err(|why| format!("keyframe {i}: {why}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Err("must be an element name, a URL, SRT/WebVTT text or an array of keyframes".into()),
    }
}

fn keyframe(item: &Value) -> Result<Keyframe, String> {
    let Value::Object(fields) = item else {
        return Err("is not an object".into());
    };
    let time = fields
        .get("time")
        .and_then(seconds)
        .ok_or("has no time in seconds")?;
    let duration = match fields.get("duration") {
        None | Some(Value::Null) => DEFAULT_DURATION_S,
        Some(d) => seconds(d).ok_or("has a duration that is not seconds >= 0")?,
    };
    let value = fields
        .get("value")
        .and_then(Value::as_str)
        .ok_or("has no text value")?
        .to_owned();
    let sentence = match fields.get("sentence") {
        None | Some(Value::Null) => None,
        Some(n) => Some(
            n.as_u64()
                .ok_or("has a sentence that is not a whole number")?,
        ),
    };
    Ok(Keyframe {
        time,
        duration,
        value,
        sentence,
    })
}

/// Seconds as RenderScript writes them: a number or `"2.5 s"`; finite and not negative.
pub(crate) fn seconds(value: &Value) -> Option<f64> {
    let secs = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().trim_end_matches('s').trim().parse().ok()?,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then_some(secs)
}

/// The lines `keyframes` show on a text element named `element` that starts at `element_time`
/// seconds: consecutive keyframes of one sentence make one line.
pub(crate) fn render(
    element: &str,
    element_time: f64,
    keyframes: &[Keyframe],
) -> Vec<SubtitleLine> {
    let round = |s: f64| (s * 1000.0).round() / 1000.0;
    let mut lines: Vec<(Option<u64>, Vec<&Keyframe>)> = Vec::new();
    for k in keyframes {
        match lines.last_mut() {
            Some((Some(sentence), words)) if k.sentence == Some(*sentence) => words.push(k),
            _ => lines.push((k.sentence, vec![k])),
        }
    }
    lines
        .into_iter()
        .map(|(_, words)| {
            let start = words.iter().map(|k| k.time).fold(f64::INFINITY, f64::min);
            let end = words
                .iter()
                .map(|k| k.time + k.duration)
                .fold(f64::NEG_INFINITY, f64::max);
            SubtitleLine {
                element: element.to_owned(),
                text: words
                    .iter()
                    .map(|k| k.value.trim())
                    .collect::<Vec<_>>()
                    .join(" "),
                time: round(element_time + start),
                duration: round(end - start),
                words: words.len(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keyframes_parse_with_defaults_and_render_by_sentence() {
        let frames = parse(&json!([
            { "time": 1.0, "duration": 0.5, "value": "Hello", "sentence": 1 },
            { "time": "1.6 s", "value": "world", "sentence": 1 },
            { "time": 4, "duration": 0.25, "value": "Again" },
        ]))
        .unwrap()
        .unwrap();
        assert!(
            (frames[1].duration - 1.0).abs() < f64::EPSILON,
            "1 s by default"
        );
        let lines = render("Captions", 2.0, &frames);
        assert_eq!(
            lines,
            [
                SubtitleLine {
                    element: "Captions".into(),
                    text: "Hello world".into(),
                    time: 3.0,
                    duration: 1.6,
                    words: 2,
                },
                SubtitleLine {
                    element: "Captions".into(),
                    text: "Again".into(),
                    time: 6.0,
                    duration: 0.25,
                    words: 1,
                },
            ]
        );
        assert_eq!(parse(&json!("Audio")), Ok(None));
    }

    #[test]
    fn a_bad_keyframe_names_itself() {
        for (bad, why) in [
            (
                json!([{ "value": "x" }]),
                "keyframe 0: has no time in seconds",
            ),
            (
                json!([{ "time": 1, "value": "x" }, { "time": -1, "value": "y" }]),
                "keyframe 1: has no time in seconds",
            ),
            (json!([{ "time": 1 }]), "keyframe 0: has no text value"),
            (
                json!([{ "time": 1, "value": "x", "duration": "long" }]),
                "keyframe 0: has a duration that is not seconds >= 0",
            ),
            (
                json!([{ "time": 1, "value": "x", "sentence": 1.5 }]),
                "keyframe 0: has a sentence that is not a whole number",
            ),
            (json!(["x"]), "keyframe 0: is not an object"),
        ] {
            assert_eq!(parse(&bad).unwrap_err(), why);
        }
        assert!(parse(&json!(3)).is_err());
    }
}
