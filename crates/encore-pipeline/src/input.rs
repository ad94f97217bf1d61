//! The business description a video is made for, validated before any billed call.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The language the lyrics are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Korean (the default: the plan's users are Korean).
    #[default]
    Ko,
    /// English.
    En,
}

impl Language {
    /// `ko` or `en`.
    pub const fn code(self) -> &'static str {
        match self {
            Language::Ko => "ko",
            Language::En => "en",
        }
    }
    /// The language's English name, for prompts.
    pub const fn english_name(self) -> &'static str {
        match self {
            Language::Ko => "Korean",
            Language::En => "English",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Language {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ko" | "kr" | "korean" | "한국어" => Ok(Language::Ko),
            "en" | "english" => Ok(Language::En),
            other => Err(InputError::new(
                "lang",
                format!("unknown language {other:?}: use \"ko\" or \"en\""),
            )),
        }
    }
}

/// What the video is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessInput {
    /// The business's name, e.g. "Haneul Bakery".
    pub name: String,
    /// What the business is and does, in a sentence or two.
    pub description: String,
    /// Where it is (optional), e.g. "Seoul, Mapo-gu".
    pub region: Option<String>,
    /// Mood or genre hints (optional), e.g. "warm acoustic pop".
    pub mood: Option<String>,
    /// The lyrics' language.
    pub language: Language,
}

impl BusinessInput {
    /// Longest accepted business name, in characters (once trimmed).
    pub const MAX_NAME_CHARS: usize = 100;
    /// Longest accepted business description, in characters (once trimmed).
    pub const MAX_DESCRIPTION_CHARS: usize = 1000;
    /// Longest accepted region, in characters (once trimmed).
    pub const MAX_REGION_CHARS: usize = 100;
    /// Longest accepted mood/genre hint, in characters (once trimmed).
    pub const MAX_MOOD_CHARS: usize = 200;

    /// A business with a name and description, in Korean, with no region or mood.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            region: None,
            mood: None,
            language: Language::default(),
        }
    }

    /// Checks every field: required ones present, none too long, no control characters.
    ///
    /// # Errors
    ///
    /// An [`InputError`] naming the field and the reason.
    pub fn validate(&self) -> Result<(), InputError> {
        check_text("name", &self.name, Self::MAX_NAME_CHARS, true)?;
        check_text(
            "business",
            &self.description,
            Self::MAX_DESCRIPTION_CHARS,
            true,
        )?;
        if let Some(region) = &self.region {
            check_text("region", region, Self::MAX_REGION_CHARS, false)?;
        }
        if let Some(mood) = &self.mood {
            check_text("mood", mood, Self::MAX_MOOD_CHARS, false)?;
        }
        Ok(())
    }
}

fn check_text(
    field: &'static str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<(), InputError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        if required {
            return Err(InputError::new(field, "must not be empty".to_owned()));
        }
        return Ok(());
    }
    let chars = trimmed.chars().count();
    if chars > max {
        return Err(InputError::new(
            field,
            format!("is {chars} characters long; the limit is {max}"),
        ));
    }
    if trimmed.chars().any(|c| c.is_control() && c != '\n') {
        return Err(InputError::new(
            field,
            "contains control characters".to_owned(),
        ));
    }
    Ok(())
}

/// Input that cannot be used: names the field and says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input: {field} {reason}")]
pub struct InputError {
    field: &'static str,
    reason: String,
}

impl InputError {
    /// A refusal of `field` for `reason`.
    pub fn new(field: &'static str, reason: String) -> Self {
        Self { field, reason }
    }
    /// The offending field, named as on the command line.
    pub fn field(&self) -> &'static str {
        self.field
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_input_is_valid() {
        let mut input = BusinessInput::new("하늘 베이커리", "동네 빵집, 매일 아침 갓 구운 소금빵");
        input.region = Some("서울 마포구".into());
        input.validate().unwrap();
    }

    #[test]
    fn empty_overlong_and_control_characters_are_refused_with_the_field() {
        let cases = [
            (BusinessInput::new("  ", "a bakery"), "name"),
            (BusinessInput::new("Bakery", ""), "business"),
            (BusinessInput::new("x".repeat(101), "a bakery"), "name"),
            (BusinessInput::new("Bakery", "가".repeat(1001)), "business"),
            (BusinessInput::new("Bake\u{7}ry", "a bakery"), "name"),
        ];
        for (input, field) in cases {
            let err = input.validate().unwrap_err();
            assert_eq!(err.field(), field, "{err}");
        }
        let mut input = BusinessInput::new("Bakery", "a bakery");
        input.mood = Some("m".repeat(201));
        assert_eq!(input.validate().unwrap_err().field(), "mood");
    }

    #[test]
    fn languages_parse_and_unknown_ones_are_named() {
        assert_eq!("ko".parse::<Language>().unwrap(), Language::Ko);
        assert_eq!("EN".parse::<Language>().unwrap(), Language::En);
        let err = "fr".parse::<Language>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid input: lang unknown language \"fr\": use \"ko\" or \"en\""
        );
    }
}
