//! The OpenAPI document of the HTTP API, generated from the handlers and types
//! (`GET /openapi.json`).

use axum::Json;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::api;
use super::doc;
use super::schema::{self, Rules};

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
        schema::EventFrame,
    )),
    modifiers(&Bearer, &LayerAnswers, &Rules),
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

/// The answers of the layers around the handlers, on every operation they wrap: without the
/// bearer token (401) or when the store or the time runs out (503), for the routes behind the
/// token; a body over the limit (413); a path parameter that is not UTF-8 (400).
struct LayerAnswers;

impl LayerAnswers {
    fn add(operation: &mut Operation, status: u16, description: &str) {
        let error = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(doc::ErrorBody::name())))
            .build();
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| {
                ResponseBuilder::new()
                    .description(description)
                    .content("application/json", error)
                    .build()
                    .into()
            });
    }
}

impl Modify for LayerAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    Self::add(
                        operation,
                        401,
                        "the bearer token is missing (`auth.required`) or wrong (`auth.invalid`)",
                    );
                    Self::add(
                        operation,
                        503,
                        "the job store does not answer (`store.unavailable`), or the request took longer than `serve.request_timeout` (`request.timeout`)",
                    );
                }
                if operation.request_body.is_some() {
                    Self::add(
                        operation,
                        413,
                        "the body is larger than `serve.body_limit`, 64 KiB by default (`body.too_large`)",
                    );
                }
                if path.contains('{') {
                    Self::add(
                        operation,
                        400,
                        "a path parameter is not UTF-8 once percent-decoded (`request.path`)",
                    );
                }
            }
        }
    }
}

/// The OpenAPI document, as JSON.
pub fn openapi_json() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).expect("the document serializes")
}

pub(crate) async fn serve() -> Json<serde_json::Value> {
    Json(openapi_json())
}
