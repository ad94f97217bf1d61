//! Captions in the form Creatomate renders in time: a text element's `transcript_source` set to
//! our own word timings.
//!
//! Creatomate documents three ways to feed a subtitle text element (the `Subtitles` topic of its
//! AI reference, <https://creatomate.com/llms/subtitles.md>): the name of a media element to
//! transcribe, a raw SRT/WebVTT string, or "your own word timings as a keyframe array": one
//! keyframe per word, `{ "time": 0.64, "duration": 0.08, "value": "It" }`, where `time` is
//! seconds from the subtitle element's own start, `duration` how long the word is sung (1 s when
//! omitted) and `value` the word, with `"sentence": 1, 2, …` grouping words. The quick start
//! "Provide your own subtitles" (<https://creatomate.com/docs/api/quick-start/provide-your-own-subtitles>)
//! shows the same array. A template modification may replace any property of a named element
//! (`"Element.property"`, <https://creatomate.com/docs/api/rest-api/the-modifications-object>),
//! arrays included (the "Rearrange scenes in a template" quick start sends one), so the render
//! request sets `Captions.transcript_source` to the keyframes.
//!
//! We send keyframes, not SRT: Suno gives us each word's time, which an SRT cue cannot carry
//! (Creatomate would have to guess where each word of a cue falls), and JSON needs no text
//! format of its own. Each caption line is one `sentence`, so a line's words stay together and
//! the line shows from its first word's `time` to its last word's end. The element is moved to
//! the start of the video (`Captions.time = 0`), because keyframe times count from the
//! element's own start and ours count from the start of the song, which the templates play from
//! 0; its `duration` runs to the end of the last line.
//!
//! What is not documented: whether a keyframe's `value` may hold several words (ours do when
//! Suno sent them as one token, or an untimed word was joined to its neighbour) and exactly how
//! `sentence` pages the text; how the words are highlighted is left to the template's
//! `transcript_effect` and `transcript_maximum_length`.

use serde_json::{Value, json};

use crate::captions::{Caption, round_ms};

/// The `transcript_source` keyframes for `captions`: one per caption word, in order, with the
/// 1-based number of its line as `sentence`. A caption without words (stored by an older
/// version) is one keyframe for the whole line.
pub fn keyframes(captions: &[Caption]) -> Value {
    let keyframe = |text: &str, start: f64, end: f64, sentence: usize| {
        json!({
            "time": round_ms(start),
            "duration": round_ms((end - start).max(0.0)),
            "value": text,
            "sentence": sentence,
        })
    };
    let frames = captions
        .iter()
        .enumerate()
        .flat_map(|(i, line)| {
            if line.words.is_empty() {
                vec![keyframe(&line.text, line.start, line.end, i + 1)]
            } else {
                line.words
                    .iter()
                    .map(|w| keyframe(&w.text, w.start, w.end, i + 1))
                    .collect()
            }
        })
        .collect();
    Value::Array(frames)
}

/// When the last caption line ends, in seconds (0 without captions).
pub fn last_line_end(captions: &[Caption]) -> f64 {
    round_ms(captions.iter().map(|c| c.end).fold(0.0, f64::max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::captions::{CaptionWord, spread};

    #[test]
    fn one_keyframe_per_word_with_its_line_as_sentence() {
        let caps = vec![
            Caption {
                text: "Waggin' tails".into(),
                start: 1.36,
                end: 2.1,
                words: vec![
                    CaptionWord {
                        text: "Waggin'".into(),
                        start: 1.36,
                        end: 1.79,
                    },
                    CaptionWord {
                        text: "tails".into(),
                        start: 1.8,
                        end: 2.1,
                    },
                ],
            },
            Caption {
                text: "Haneul!".into(),
                start: 5.0,
                end: 5.6,
                words: Vec::new(),
            },
        ];
        assert_eq!(
            keyframes(&caps),
            json!([
                { "time": 1.36, "duration": 0.43, "value": "Waggin'", "sentence": 1 },
                { "time": 1.8, "duration": 0.3, "value": "tails", "sentence": 1 },
                { "time": 5.0, "duration": 0.6, "value": "Haneul!", "sentence": 2 },
            ])
        );
        assert!((last_line_end(&caps) - 5.6).abs() < 1e-9);
        assert!(last_line_end(&[]).abs() < f64::EPSILON);
    }

    #[test]
    fn spread_captions_become_keyframes_too() {
        let frames = keyframes(&spread("one two\nthree", 10.0));
        let frames = frames.as_array().unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[1]["value"], "two");
        assert_eq!(frames[1]["time"], 2.5);
        assert_eq!(frames[2]["sentence"], 2);
    }
}
