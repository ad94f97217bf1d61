//! Argument groups that several commands share, and the value checks clap runs on arguments
//! (so a bad value is a usage error, exit 3, before anything else happens).

use std::path::PathBuf;

use clap::Args;
use clap::builder::PossibleValuesParser;
use encore_pipeline::{BusinessInput, Language};
use encore_sim::Scenario;
use encore_store::JobId;

use crate::error::CliError;

/// Options shared by the commands that read configuration.
#[derive(Debug, Args, Clone, Default)]
pub struct ConfigArgs {
    /// Configuration file (default: ./encore.toml when it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print one JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Where the services are.
#[derive(Debug, Args, Clone, Default)]
pub struct TargetArgs {
    /// Send all three services' calls to a simulator at this base URL (e.g. one started with
    /// `encore sim`), instead of the base URLs in the configuration.
    #[arg(long, value_name = "URL", value_parser = non_blank)]
    pub sim: Option<String>,
}

/// Where jobs are journaled.
#[derive(Debug, Args, Clone, Default)]
pub struct StoreArgs {
    /// The job store: an SQLite file, created with its directory if missing (or a
    /// postgres:// URL). Default: store.path, else jobs.db in the platform's data directory
    /// (~/.local/share/encore on Linux).
    #[arg(long, value_name = "PATH", value_parser = non_blank)]
    pub db: Option<String>,
}

/// The business the video is for.
#[derive(Debug, Args, Clone)]
pub struct BusinessArgs {
    /// What the business is and does.
    #[arg(long, value_name = "TEXT")]
    pub business: String,
    /// The business's name.
    #[arg(long)]
    pub name: String,
    /// Where it is.
    #[arg(long)]
    pub region: Option<String>,
    /// Mood or genre hints.
    #[arg(long)]
    pub mood: Option<String>,
    /// Language of the lyrics: ko or en.
    #[arg(long, default_value = "ko")]
    pub lang: Language,
}

impl BusinessArgs {
    /// The business as the pipeline takes it, checked (lengths, control characters).
    pub fn input(&self) -> Result<BusinessInput, CliError> {
        let input = BusinessInput {
            name: self.name.clone(),
            description: self.business.clone(),
            region: self.region.clone(),
            mood: self.mood.clone(),
            language: self.lang,
        };
        input.validate().map_err(CliError::bad_input)?;
        Ok(input)
    }
}

/// The simulator's named fault scenarios, as clap's possible values.
pub fn scenario_names() -> PossibleValuesParser {
    PossibleValuesParser::new(Scenario::NAMES)
}

/// The simulator scenario named `name` (one of [`Scenario::NAMES`], which clap checked).
pub fn named_scenario(name: &str) -> Scenario {
    Scenario::named(name).expect("clap accepts only the names in Scenario::NAMES")
}

/// The longest `--time-scale`: ten times slower than the real services.
const MAX_TIME_SCALE: f64 = 10.0;

/// `--time-scale`: a factor above 0 and at most 10.
pub fn time_scale(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if value.is_finite() && value > 0.0 && value <= MAX_TIME_SCALE {
        Ok(value)
    } else {
        Err(format!("must be above 0 and at most {MAX_TIME_SCALE}"))
    }
}

/// A number of seconds above 0.
pub fn positive_seconds(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err("must be a positive number of seconds".to_owned())
    }
}

/// A job id (a UUID, as `encore run` prints it).
pub fn job_id(text: &str) -> Result<JobId, String> {
    text.trim()
        .parse()
        .map_err(|e: encore_store::Error| e.to_string())
}

/// Text that is not empty or only whitespace.
pub fn non_blank(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_scales_outside_the_range_are_refused() {
        assert_eq!(time_scale("0.01"), Ok(0.01));
        assert_eq!(time_scale("10"), Ok(10.0));
        for bad in ["0", "-1", "10.5", "NaN", "inf", "fast"] {
            assert!(time_scale(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_must_be_positive_and_text_not_blank() {
        assert_eq!(positive_seconds("12.5"), Ok(12.5));
        for bad in ["0", "-3", "NaN", "soon"] {
            assert!(positive_seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(non_blank("x"), Ok("x".to_owned()));
        let id = JobId::generate();
        assert_eq!(job_id(&format!(" {id} ")), Ok(id));
        assert!(
            job_id("last")
                .unwrap_err()
                .contains("invalid job id \"last\"")
        );
        assert!(non_blank(" \t").is_err());
    }
}
