//! What a job is asked to make: the fields of `encore run`'s flags, as `POST /v1/jobs` takes
//! them and as the job store keeps them.

use encore_pipeline::{BusinessInput, InputError, Language};
use serde::{Deserialize, Serialize};

/// A job's business input: `business` and `name` are required; `region`, `mood` and `lang`
/// (`ko` or `en`, default `ko`) are optional. Unknown fields are refused.
///
/// ```
/// use encore_service::JobInput;
///
/// let input: JobInput = serde_json::from_str(
///     r#"{"business": "a bakery in Mangwon-dong", "name": "Haneul", "lang": "en"}"#,
/// ).unwrap();
/// let business = input.to_business().unwrap();
/// assert_eq!(business.name, "Haneul");
/// assert!(serde_json::from_str::<JobInput>(r#"{"business": "x", "name": "y", "colour": 1}"#).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
// The OpenAPI document's description: the first paragraph above, without the Rust example.
#[schema(
    description = "A job's business input: `business` and `name` are required; `region`, `mood` and `lang` (`ko` or `en`, default `ko`) are optional. Unknown fields are refused."
)]
pub struct JobInput {
    /// What the business is and does.
    pub business: String,
    /// Its name.
    pub name: String,
    /// Where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Mood or genre hints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mood: Option<String>,
    /// The lyrics' language: `ko` (default) or `en`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

impl JobInput {
    /// The pipeline's input, validated.
    ///
    /// # Errors
    ///
    /// An [`InputError`] naming the field (`business`, `name`, `region`, `mood`, `lang`).
    pub fn to_business(&self) -> Result<BusinessInput, InputError> {
        let mut input = BusinessInput::new(self.name.clone(), self.business.clone());
        input.region.clone_from(&self.region);
        input.mood.clone_from(&self.mood);
        input.language = match &self.lang {
            Some(lang) => lang.parse::<Language>()?,
            None => Language::default(),
        };
        input.validate()?;
        Ok(input)
    }

    /// The input of a pipeline run, as a job keeps it.
    pub fn from_business(input: &BusinessInput) -> JobInput {
        JobInput {
            business: input.description.clone(),
            name: input.name.clone(),
            region: input.region.clone(),
            mood: input.mood.clone(),
            lang: Some(input.language.code().to_owned()),
        }
    }
}
