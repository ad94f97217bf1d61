//! The lyrics stage: a structured-output request to OpenAI, checked against Suno's limits.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::BusinessInput;

/// What OpenAI is asked to return (sent as a strict JSON Schema).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Lyrics {
    /// The song's title.
    pub title: String,
    /// The lyrics, with section tags such as `[Verse]`, `[Chorus]` and `[Bridge]` on their own
    /// lines.
    #[schemars(
        description = "The lyrics, with section tags such as [Verse], [Chorus] and [Bridge] on their own lines."
    )]
    pub lyrics: String,
    /// Comma-separated style tags for the music (genre, mood, instruments, tempo).
    pub style: String,
}

/// Suno's length limits for custom mode, per model (sunoapi.org docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SunoLimits {
    /// Lyrics (`prompt`) characters.
    pub lyrics: usize,
    /// `style` characters.
    pub style: usize,
    /// `title` characters.
    pub title: usize,
}

impl SunoLimits {
    /// The limits for `model` (`V4`: 3000/200/80; `V4_5ALL`: 5000/1000/80; newer: 5000/1000/100).
    pub fn for_model(model: &str) -> Self {
        match model {
            "V4" | "V3_5" => Self {
                lyrics: 3000,
                style: 200,
                title: 80,
            },
            "V4_5ALL" => Self {
                lyrics: 5000,
                style: 1000,
                title: 80,
            },
            _ => Self {
                lyrics: 5000,
                style: 1000,
                title: 100,
            },
        }
    }
}

/// The system instructions for the lyrics request.
pub fn instructions(input: &BusinessInput, limits: SunoLimits) -> String {
    // Leave head-room under Suno's limit: the model counts characters loosely.
    let budget = (limits.lyrics * 3 / 5).min(1500);
    format!(
        "You write short, catchy songs that advertise small local businesses. \
         Write the song in {language}. Structure the lyrics with section tags on their own lines: \
         [Verse], [Chorus], [Verse], [Chorus], optionally [Bridge] and a final [Chorus]. \
         Mention the business by name in the chorus. Keep the lyrics under {budget} characters, \
         the title under {title} characters, and the style under 120 characters as comma-separated \
         tags (genre, mood, instruments, tempo). Return only the JSON object.",
        language = input.language.english_name(),
        title = limits.title.min(60),
    )
}

/// The user input for the lyrics request.
pub fn prompt(input: &BusinessInput) -> String {
    let mut text = format!(
        "Business name: {}\nAbout the business: {}\n",
        input.name.trim(),
        input.description.trim()
    );
    if let Some(region) = input.region.as_deref().filter(|r| !r.trim().is_empty()) {
        text.push_str(&format!("Region: {}\n", region.trim()));
    }
    if let Some(mood) = input.mood.as_deref().filter(|m| !m.trim().is_empty()) {
        text.push_str(&format!("Mood and genre: {}\n", mood.trim()));
    }
    text
}

/// Fits `lyrics` into Suno's limits: trims whitespace, cuts overlong fields at a line (or word)
/// boundary. Returns what was changed, for the pipeline's events.
pub fn fit_to_limits(lyrics: &mut Lyrics, limits: SunoLimits) -> Vec<String> {
    let mut notes = Vec::new();
    lyrics.title = lyrics.title.trim().to_owned();
    lyrics.style = lyrics.style.trim().to_owned();
    lyrics.lyrics = lyrics.lyrics.trim().to_owned();
    if cut(&mut lyrics.lyrics, limits.lyrics, '\n') {
        notes.push(format!(
            "lyrics cut to {} characters (Suno's limit)",
            limits.lyrics
        ));
    }
    if cut(&mut lyrics.style, limits.style, ',') {
        notes.push(format!("style cut to {} characters", limits.style));
    }
    if cut(&mut lyrics.title, limits.title, ' ') {
        notes.push(format!("title cut to {} characters", limits.title));
    }
    notes
}

/// Cuts `text` to at most `max` characters, at the last `boundary` if there is one.
fn cut(text: &mut String, max: usize, boundary: char) -> bool {
    if text.chars().count() <= max {
        return false;
    }
    let byte_end = text.char_indices().nth(max).map_or(text.len(), |(i, _)| i);
    let head = &text[..byte_end];
    let end = head.rfind(boundary).filter(|&i| i > 0).unwrap_or(byte_end);
    text.truncate(end);
    let trimmed = text.trim_end_matches([' ', ',', '\n']).len();
    text.truncate(trimmed);
    true
}

/// Whether the lyrics carry at least one section tag such as `[Verse]`.
pub fn has_sections(lyrics: &str) -> bool {
    lyrics.lines().any(|l| {
        let l = l.trim();
        l.starts_with('[') && l.ends_with(']') && l.len() > 2
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Language;

    #[test]
    fn limits_follow_the_model() {
        assert_eq!(SunoLimits::for_model("V4").lyrics, 3000);
        assert_eq!(SunoLimits::for_model("V4_5").title, 100);
        assert_eq!(SunoLimits::for_model("V4_5ALL").title, 80);
        assert_eq!(SunoLimits::for_model("V5").style, 1000);
    }

    #[test]
    fn overlong_lyrics_are_cut_at_a_line_boundary() {
        let mut l = Lyrics {
            title: "  Salt Bread Morning  ".into(),
            lyrics: "[Verse]\nline one\nline two\n[Chorus]\nla la la".into(),
            style: "pop, warm".into(),
        };
        let notes = fit_to_limits(
            &mut l,
            SunoLimits {
                lyrics: 24,
                style: 100,
                title: 100,
            },
        );
        assert_eq!(l.lyrics, "[Verse]\nline one");
        assert_eq!(l.title, "Salt Bread Morning");
        assert_eq!(notes.len(), 1);
        assert!(l.lyrics.chars().count() <= 24);
    }

    #[test]
    fn cutting_respects_multibyte_characters() {
        let mut text = "가나다라마바사".to_owned();
        assert!(cut(&mut text, 3, '\n'));
        assert_eq!(text, "가나다");
    }

    #[test]
    fn the_prompt_carries_every_field_and_the_language() {
        let mut input = BusinessInput::new("Haneul Bakery", "a neighbourhood bakery");
        input.region = Some("Seoul".into());
        input.mood = Some("acoustic".into());
        input.language = Language::En;
        let p = prompt(&input);
        for part in ["Haneul Bakery", "neighbourhood bakery", "Seoul", "acoustic"] {
            assert!(p.contains(part), "{p}");
        }
        assert!(instructions(&input, SunoLimits::for_model("V4_5")).contains("in English"));
    }

    #[test]
    fn sections_are_detected() {
        assert!(has_sections("[Verse]\nhello"));
        assert!(!has_sections("hello\nworld"));
    }
}
