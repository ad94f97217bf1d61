//! What the derived schemas of the OpenAPI document cannot say by themselves: the rules the
//! server applies to a job's input and to a resolution (so that a client, or a tool that
//! generates requests from the document, sends what the server accepts), and the frames of a
//! job's event stream. Each rule is written from the code that enforces it; the integration
//! tests check the two agree.

use encore_pipeline::{BusinessInput, JobStatus, StepName};
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, Object, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::openapi::{OpenApi, Ref, RefOr};
use utoipa::{Modify, PartialSchema, ToSchema};

/// The characters `str::trim` removes (`char::is_whitespace`: Unicode's `White_Space`), as the
/// body of a regex class. Spelled out because `\s` differs between regex dialects.
const WHITESPACE: &str = r"\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";
/// The control characters (`char::is_control`: Unicode's `Cc`), as the body of a regex class.
const CONTROL: &str = r"\x00-\x1F\x7F-\x9F";
/// The control characters but the newline, as the body of a regex class.
const CONTROL_BUT_NEWLINE: &str = r"\x00-\x09\x0B-\x1F\x7F-\x9F";

/// A text field as `BusinessInput::validate` takes it: trimmed, it has at most `max`
/// characters, none of them a control character but newlines, and (when `required`) it is not
/// empty. So: whitespace, then a character that is neither whitespace nor control, then up to
/// `max - 2` characters that are not control characters and a last such character, then
/// whitespace. (Not `maxLength`: the server counts the characters of the trimmed text.)
fn text_pattern(max: usize, required: bool) -> String {
    let visible = format!("[^{WHITESPACE}{CONTROL}]");
    let inner = format!("[^{CONTROL_BUT_NEWLINE}]");
    let space = format!("[{WHITESPACE}]");
    let between = max.saturating_sub(2);
    let text = format!("{visible}(?:{inner}{{0,{between}}}{visible})?");
    if required {
        format!("^{space}*{text}{space}*$")
    } else {
        format!("^{space}*(?:{text}{space}*)?$")
    }
}

/// Tightens the derived schemas with the server's rules (a [`Modify`] of the document).
pub(crate) struct Rules;

impl Modify for Rules {
    fn modify(&self, openapi: &mut OpenApi) {
        let schemas = &mut openapi
            .components
            .as_mut()
            .expect("the document has components")
            .schemas;
        let input = schemas
            .get_mut(crate::JobInput::name().as_ref())
            .expect("JobInput is a component");
        job_input(input);
        let resolve = schemas
            .get_mut(super::doc::ResolveRequest::name().as_ref())
            .expect("ResolveRequest is a component");
        resolve_request(resolve);
    }
}

/// The object schema of a derived struct, and its property `name`.
fn property<'a>(schema: &'a mut RefOr<Schema>, name: &str) -> &'a mut Object {
    let RefOr::T(Schema::Object(object)) = schema else {
        panic!("a derived struct's schema is an object");
    };
    match object.properties.get_mut(name) {
        Some(RefOr::T(Schema::Object(property))) => property,
        _ => panic!("{name} is a property of its own schema"),
    }
}

/// `JobInput`: the text fields as `BusinessInput::validate` checks them, and the languages.
/// The server is a little more lenient than the schema on `lang`, and its description says so:
/// it also takes `kr`, `korean`, `english`, and any case.
fn job_input(schema: &mut RefOr<Schema>) {
    for (field, max, required) in [
        ("business", BusinessInput::MAX_DESCRIPTION_CHARS, true),
        ("name", BusinessInput::MAX_NAME_CHARS, true),
        ("region", BusinessInput::MAX_REGION_CHARS, false),
        ("mood", BusinessInput::MAX_MOOD_CHARS, false),
    ] {
        let text = property(schema, field);
        text.pattern = Some(text_pattern(max, required));
        let description = text.description.get_or_insert_default();
        description.push_str(&format!(
            " At most {max} characters (once trimmed); no control characters but newlines{}.",
            if required { "; not blank" } else { "" }
        ));
    }
    let lang = property(schema, "lang");
    lang.enum_values = Some(vec!["ko".into(), "en".into(), serde_json::Value::Null]);
    lang.description
        .get_or_insert_default()
        .push_str(" (`kr`, `korean`, `english`, in any case, are taken too.)");
}

/// `ResolveRequest`: either `adopt` (a provider's id, not blank, without `resubmit`), or
/// `resubmit` with `accept_paying_twice`, both true; `step`, a billed step.
fn resolve_request(schema: &mut RefOr<Schema>) {
    let billed = StepName::ALL
        .iter()
        .filter(|s| s.is_billed())
        .map(|s| serde_json::Value::from(s.as_str()))
        .chain([serde_json::Value::Null]);
    property(schema, "step").enum_values = Some(billed.collect());
    let adopt = ObjectBuilder::new()
        .title(Some("adopt"))
        .property(
            "adopt",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(format!("[^{WHITESPACE}]"))),
        )
        .required("adopt")
        .property(
            "resubmit",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .enum_values(Some([false])),
        );
    let resubmit = ObjectBuilder::new()
        .title(Some("resubmit"))
        .property("adopt", ObjectBuilder::new().schema_type(Type::Null))
        .property(
            "resubmit",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .enum_values(Some([true])),
        )
        .required("resubmit")
        .property(
            "accept_paying_twice",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .enum_values(Some([true])),
        )
        .required("accept_paying_twice");
    let derived = std::mem::take(schema);
    *schema = AllOfBuilder::new()
        .item(derived)
        .item(OneOfBuilder::new().item(adopt).item(resubmit))
        .into();
}

/// One frame of `GET /v1/jobs/{id}/events`, as an event-stream parser gives it (`id`, `event`,
/// `data`; the schema of each event, as OpenAPI 3.2's `itemSchema` has it): an event of the
/// job's timeline, its `data` an `EventDocument`; or the last frame, `end`, whose `data` is the
/// job's final status.
pub(crate) struct EventFrame;

impl PartialSchema for EventFrame {
    fn schema() -> RefOr<Schema> {
        let final_statuses = JobStatus::ALL
            .iter()
            .filter(|s| s.is_final())
            .map(|s| s.as_str());
        // utoipa has no `contentSchema`: its extensions are written out as they are named.
        let content_schema = Extensions::from_iter([(
            "contentSchema",
            serde_json::to_value(Ref::from_schema_name(super::doc::EventDocument::name()))
                .expect("a reference serializes"),
        )]);
        let event = ObjectBuilder::new()
            .title(Some("event"))
            .description(Some("an event of the job's timeline"))
            .property(
                "id",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[0-9]+$"))
                    .description(Some("the event's number (`seq`)")),
            )
            .required("id")
            .property(
                "event",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("the event's kind")),
            )
            .required("event")
            .property(
                "data",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .content_media_type("application/json")
                    .extensions(Some(content_schema))
                    .description(Some("an `EventDocument`, as JSON")),
            )
            .required("data");
        let end = ObjectBuilder::new()
            .title(Some("end"))
            .description(Some(
                "the last frame, once the job has succeeded, failed or been cancelled",
            ))
            .property(
                "event",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["end"])),
            )
            .required("event")
            .property(
                "data",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(final_statuses))
                    .description(Some("the job's final status")),
            )
            .required("data");
        AnyOfBuilder::new()
            .description(Some(
                "one frame of the event stream: an event of the job's timeline, or the end",
            ))
            .item(event)
            .item(end)
            .into()
    }
}

impl ToSchema for EventFrame {}
