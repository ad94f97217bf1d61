//! The API keys and the Creatomate template id, from the environment.

use encore_clients::ApiKey;
use encore_pipeline::Keys;

use crate::error::CliError;
use crate::settings::Settings;

/// OpenAI's key.
pub const OPENAI_KEY_VAR: &str = "OPENAI_API_KEY";
/// Suno's key.
pub const SUNO_KEY_VAR: &str = "SUNO_API_KEY";
/// Creatomate's key.
pub const CREATOMATE_KEY_VAR: &str = "CREATOMATE_API_KEY";
/// The Creatomate template to render.
pub const TEMPLATE_VAR: &str = "CREATOMATE_TEMPLATE_ID";

/// The key sent for a service a command does not call, and for every missing key against a
/// simulator.
const UNUSED_KEY: &str = "encore-unused-key";

/// Which keys a command needs.
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    openai: bool,
    suno: bool,
    creatomate: bool,
    template: bool,
}

impl Needs {
    /// The whole pipeline.
    pub const ALL: Needs = Needs {
        openai: true,
        suno: true,
        creatomate: true,
        template: true,
    };
    /// The lyrics stage.
    pub const LYRICS: Needs = Needs {
        openai: true,
        suno: false,
        creatomate: false,
        template: false,
    };
    /// The song stage.
    pub const SONG: Needs = Needs {
        openai: false,
        suno: true,
        creatomate: false,
        template: false,
    };
    /// The video stage.
    pub const VIDEO: Needs = Needs {
        openai: false,
        suno: false,
        creatomate: true,
        template: true,
    };
}

/// Reads the keys (and the template id, into `settings`) that `needs` names from the
/// environment, naming every missing one before any call is made. Against a simulator
/// (`sim`), missing ones get placeholders.
pub fn from_env(needs: Needs, settings: &mut Settings, sim: bool) -> Result<Keys, CliError> {
    let mut missing = Vec::new();
    let mut unusable = Vec::new();
    let mut read = |var: &str, needed: bool| -> ApiKey {
        match env_value(var).map(ApiKey::new) {
            Some(Ok(key)) => return key,
            // The error says what is wrong without showing the key.
            Some(Err(e)) if needed => unusable.push(format!("{var}: {e}")),
            None if needed && !sim => missing.push(var.to_owned()),
            Some(Err(_)) | None => {}
        }
        ApiKey::new(UNUSED_KEY).expect("a non-empty key")
    };
    let keys = Keys {
        openai: read(OPENAI_KEY_VAR, needs.openai),
        suno: read(SUNO_KEY_VAR, needs.suno),
        creatomate: read(CREATOMATE_KEY_VAR, needs.creatomate),
    };
    if let Some(template) = env_value(TEMPLATE_VAR) {
        settings.pipeline.template_id = template;
    }
    if settings.pipeline.template_id.trim().is_empty() {
        if sim {
            encore_sim::DEMO_TEMPLATE_ID.clone_into(&mut settings.pipeline.template_id);
        } else if needs.template {
            missing.push(format!("{TEMPLATE_VAR} (or pipeline.template_id)"));
        }
    }
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "missing {}: set {} in the environment",
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" }
        ));
    }
    if !unusable.is_empty() {
        problems.push(format!("unusable {}", unusable.join(", ")));
    }
    if problems.is_empty() {
        Ok(keys)
    } else {
        Err(CliError::bad_input(anyhow::anyhow!(
            "{} (nothing was sent)",
            problems.join("; ")
        )))
    }
}

/// The keys the demo sends to its embedded simulator.
pub fn demo() -> Keys {
    Keys {
        openai: ApiKey::new("sk-encore-demo").expect("a non-empty key"),
        suno: ApiKey::new("suno-encore-demo").expect("a non-empty key"),
        creatomate: ApiKey::new("creatomate-encore-demo").expect("a non-empty key"),
    }
}

/// The trimmed value of `var`, unless it is unset or blank.
fn env_value(var: &str) -> Option<String> {
    let value = std::env::var(var).ok()?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}
