//! The OpenAPI document of the HTTP API, generated from the handlers and types
//! (`GET /openapi.json`).

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::api;
use super::doc;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "encore",
        description = "Turns a short business description into a music video through OpenAI, Suno and Creatomate: durable jobs that survive crashes without paying twice."
    ),
    paths(
        api::create_job,
        api::list_jobs,
        api::get_job,
        api::cancel_job,
        api::resolve_job,
        api::job_events,
        api::healthz,
        api::readyz,
        super::scrape,
    ),
    components(schemas(
        crate::JobInput,
        doc::JobDocument,
        doc::StepDocument,
        doc::ErrorDocument,
        doc::AttentionDocument,
        doc::JobPageDocument,
        doc::ResolveRequest,
        doc::ErrorBody,
        doc::ErrorBodyInner,
        doc::EventDocument,
    )),
    modifiers(&Bearer),
    tags((name = "jobs", description = "music-video jobs"), (name = "ops", description = "health and metrics"))
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document, as JSON.
pub fn openapi_json() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).expect("the document serializes")
}

pub(crate) async fn serve() -> Json<serde_json::Value> {
    Json(openapi_json())
}
