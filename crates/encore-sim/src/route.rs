//! Route identifiers: the names scenarios, the ledger and logs use for each simulated endpoint.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One simulated endpoint.
///
/// The string form (`as_str`, serde, `FromStr`) is the id used in scenario files,
/// e.g. `suno.generate`; [`RouteId::endpoint`] is the method and path template,
/// e.g. `POST /api/v1/generate`, used as the key of [`Ledger::requests_per_route`](crate::Ledger).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RouteId {
    /// `POST /v1/responses` (OpenAI).
    #[serde(rename = "openai.responses")]
    OpenaiResponses,
    /// `POST /api/v1/generate` (Suno, billed).
    #[serde(rename = "suno.generate")]
    SunoGenerate,
    /// `GET /api/v1/generate/record-info` (Suno).
    #[serde(rename = "suno.record_info")]
    SunoRecordInfo,
    /// `POST /api/v1/generate/get-timestamped-lyrics` (Suno).
    #[serde(rename = "suno.timestamped_lyrics")]
    SunoTimestampedLyrics,
    /// `GET /api/v1/generate/credit` (Suno).
    #[serde(rename = "suno.credit")]
    SunoCredit,
    /// `POST /v1/renders` (Creatomate, billed).
    #[serde(rename = "creatomate.render")]
    CreatomateRender,
    /// `GET /v1/renders/{id}` (Creatomate).
    #[serde(rename = "creatomate.render_status")]
    CreatomateRenderStatus,
    /// `GET /v1/templates` (Creatomate).
    #[serde(rename = "creatomate.templates")]
    CreatomateTemplates,
    /// `GET /v1/templates/{id}` (Creatomate).
    #[serde(rename = "creatomate.template")]
    CreatomateTemplate,
}

/// Which upstream service a route belongs to; decides the error body format.
///
/// Serialized as `openai`, `suno`, `creatomate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Upstream {
    /// OpenAI: `{"error":{"message","type","param","code"}}`.
    Openai,
    /// Suno (sunoapi.org): `{"code","msg","data"}` envelope.
    Suno,
    /// Creatomate: `{"hint"}`.
    Creatomate,
}

impl RouteId {
    /// Every route, in a stable order.
    pub const ALL: [RouteId; 9] = [
        RouteId::OpenaiResponses,
        RouteId::SunoGenerate,
        RouteId::SunoRecordInfo,
        RouteId::SunoTimestampedLyrics,
        RouteId::SunoCredit,
        RouteId::CreatomateRender,
        RouteId::CreatomateRenderStatus,
        RouteId::CreatomateTemplates,
        RouteId::CreatomateTemplate,
    ];

    /// The scenario id, e.g. `"suno.generate"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RouteId::OpenaiResponses => "openai.responses",
            RouteId::SunoGenerate => "suno.generate",
            RouteId::SunoRecordInfo => "suno.record_info",
            RouteId::SunoTimestampedLyrics => "suno.timestamped_lyrics",
            RouteId::SunoCredit => "suno.credit",
            RouteId::CreatomateRender => "creatomate.render",
            RouteId::CreatomateRenderStatus => "creatomate.render_status",
            RouteId::CreatomateTemplates => "creatomate.templates",
            RouteId::CreatomateTemplate => "creatomate.template",
        }
    }

    /// Method and path template, e.g. `"POST /api/v1/generate"`.
    pub const fn endpoint(self) -> &'static str {
        match self {
            RouteId::OpenaiResponses => "POST /v1/responses",
            RouteId::SunoGenerate => "POST /api/v1/generate",
            RouteId::SunoRecordInfo => "GET /api/v1/generate/record-info",
            RouteId::SunoTimestampedLyrics => "POST /api/v1/generate/get-timestamped-lyrics",
            RouteId::SunoCredit => "GET /api/v1/generate/credit",
            RouteId::CreatomateRender => "POST /v1/renders",
            RouteId::CreatomateRenderStatus => "GET /v1/renders/{id}",
            RouteId::CreatomateTemplates => "GET /v1/templates",
            RouteId::CreatomateTemplate => "GET /v1/templates/{id}",
        }
    }

    /// The service the route belongs to.
    pub const fn upstream(self) -> Upstream {
        match self {
            RouteId::OpenaiResponses => Upstream::Openai,
            RouteId::SunoGenerate
            | RouteId::SunoRecordInfo
            | RouteId::SunoTimestampedLyrics
            | RouteId::SunoCredit => Upstream::Suno,
            RouteId::CreatomateRender
            | RouteId::CreatomateRenderStatus
            | RouteId::CreatomateTemplates
            | RouteId::CreatomateTemplate => Upstream::Creatomate,
        }
    }

    /// Whether a successful call creates a billed job (a non-idempotent POST).
    pub const fn is_billed(self) -> bool {
        matches!(
            self,
            RouteId::OpenaiResponses | RouteId::SunoGenerate | RouteId::CreatomateRender
        )
    }
}

impl fmt::Display for RouteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when parsing an unknown route id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown route id `{0}`")]
pub struct UnknownRoute(pub String);

impl FromStr for RouteId {
    type Err = UnknownRoute;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RouteId::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRoute(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_forms_agree() {
        for route in RouteId::ALL {
            assert_eq!(route.as_str().parse::<RouteId>().unwrap(), route);
            let json = serde_json::to_string(&route).unwrap();
            assert_eq!(json, format!("\"{}\"", route.as_str()));
        }
        assert!("suno.nope".parse::<RouteId>().is_err());
    }
}
