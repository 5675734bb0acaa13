//! The error half of `/openapi.json`, written once. Handlers annotate what
//! they answer on success and the refusals particular to them; every
//! operation then gets, here, the problem responses any operation of its
//! kind can answer, derived from what it is: authenticated or not, with
//! path ids, a query, a body, an `If-Match` header, a POST (idempotency) or
//! another write. Every 4xx is `application/problem+json` with the shared
//! `Problem` schema, because that is what `AppError` renders.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::SchemaType;
use utoipa::openapi::{Content, ObjectBuilder, OpenApi, Ref, RefOr, Required, Response, ResponseBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::error::{FieldError, Problem};
use crate::middleware::idempotency::IDEMPOTENCY_KEY;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// What an operation is, as far as its possible refusals go.
#[derive(Debug, Default)]
struct Traits {
    authenticated: bool,
    path_params: bool,
    query_params: bool,
    if_match: bool,
    body: bool,
    post: bool,
    write: bool,
}

impl Traits {
    fn of(method: &str, operation: &Operation) -> Self {
        let params: Vec<(ParameterIn, String)> = operation
            .parameters
            .iter()
            .flatten()
            .filter_map(|param| match param {
                RefOr::T(param) => Some((param.parameter_in.clone(), param.name.to_ascii_lowercase())),
                RefOr::Ref(_) => None,
            })
            .collect();
        Self {
            // An operation is public when it names no security requirement,
            // or names the empty one (the bearer token is optional).
            authenticated: operation
                .security
                .as_ref()
                .is_some_and(|requirements| !requirements.is_empty() && !requirements.iter().any(is_empty_requirement)),
            path_params: params.iter().any(|(place, _)| matches!(place, ParameterIn::Path)),
            query_params: params.iter().any(|(place, _)| matches!(place, ParameterIn::Query)),
            if_match: params.iter().any(|(place, name)| matches!(place, ParameterIn::Header) && name == "if-match"),
            body: operation.request_body.is_some(),
            post: method == "post",
            write: matches!(method, "post" | "put" | "patch" | "delete"),
        }
    }

    /// The statuses an operation of this kind can answer besides its own,
    /// each with why.
    fn problems(&self) -> Vec<(u16, &'static str)> {
        let mut problems = Vec::new();
        if self.body {
            problems.push((400, "Malformed JSON, or a body that cannot be read"));
        }
        problems.push(if self.authenticated {
            (401, "No bearer token, or one that is invalid, expired or revoked")
        } else {
            (401, "An Authorization header was sent and does not verify")
        });
        if self.authenticated {
            problems.push((403, "The caller's role does not allow this"));
        }
        if self.authenticated || self.path_params {
            problems.push((404, "No such resource, or one the caller cannot see"));
        }
        if self.post {
            problems.push((409, "A request with this Idempotency-Key is still in progress, or the state conflicts"));
        } else if self.write {
            problems.push((409, "The change conflicts with the current state"));
        }
        if self.if_match {
            problems.push((412, "If-Match names a version that is not the current one"));
        }
        if self.body {
            problems.push((413, "The body is larger than this server accepts"));
            problems.push((415, "The body is not application/json"));
        }
        if self.body || self.query_params || self.if_match || self.post {
            problems.push((422, "Invalid fields, or an Idempotency-Key used with another request"));
        }
        problems.push((429, "Too many requests; Retry-After says when to try again"));
        problems
    }
}

fn is_empty_requirement(requirement: &utoipa::openapi::security::SecurityRequirement) -> bool {
    serde_json::to_value(requirement).is_ok_and(|value| value.as_object().is_some_and(|fields| fields.is_empty()))
}

fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    let PathItem { get, put, post, delete, options, head, patch, trace, .. } = item;
    [
        ("get", get),
        ("put", put),
        ("post", post),
        ("delete", delete),
        ("options", options),
        ("head", head),
        ("patch", patch),
        ("trace", trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_mut().map(|operation| (method, operation)))
    .collect()
}

fn problem_content() -> Content {
    Content::new(Some(Ref::from_schema_name(Problem::name())))
}

fn problem_response(status: u16, description: &str) -> Response {
    let mut response = ResponseBuilder::new().description(description).content(PROBLEM_JSON, problem_content());
    if status == 429 {
        let seconds = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).build();
        response = response.header(
            "Retry-After",
            HeaderBuilder::new().schema(Some(seconds)).description(Some("Seconds to wait")).build(),
        );
    }
    response.build()
}

/// Whether a documented response carries the problem body (or none): those
/// are the ones `AppError` renders, so they are problem+json.
fn is_problem_or_empty(response: &Response) -> bool {
    let problem = Ref::from_schema_name(Problem::name());
    response.content.values().all(|content| match content {
        RefOr::T(content) => match &content.schema {
            None => true,
            Some(RefOr::Ref(schema)) => *schema == problem,
            Some(RefOr::T(_)) => false,
        },
        RefOr::Ref(_) => false,
    })
}

fn idempotency_key_parameter() -> utoipa::openapi::path::Parameter {
    let key = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(255))
        .pattern(Some("^[ -~]+$"))
        .build();
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some("Replays the first response to a repeat of this request (same key and body) for 24 hours"))
        .schema(Some(key))
        .build()
}

/// `?limit=` is 1 to 200 on every list (docs/api.md), whichever query struct
/// declares it.
fn bound_limit(operation: &mut Operation) {
    for param in operation.parameters.iter_mut().flatten() {
        if let RefOr::T(param) = param
            && matches!(param.parameter_in, ParameterIn::Query)
            && param.name == "limit"
            && let Some(RefOr::T(Schema::Object(schema))) = &mut param.schema
        {
            schema.minimum = Some(1.into());
            schema.maximum = Some(200.into());
        }
    }
}

/// Adds the problem responses to every operation, makes every 4xx and 5xx
/// `application/problem+json`, declares `Idempotency-Key` on every POST,
/// bounds `?limit=` and registers the `Problem` schema.
pub fn document_problems(api: &mut OpenApi) {
    let components = api.components.get_or_insert_with(Default::default);
    components.schemas.insert(Problem::name().into_owned(), Problem::schema());
    components.schemas.insert(FieldError::name().into_owned(), FieldError::schema());
    // JSON kept as text (audit states, event payloads) is whatever JSON was
    // stored: an array as often as an object. Not null, which the optional
    // fields holding it already allow (`oneOf` must match exactly one).
    let non_null = vec![Type::Object, Type::Array, Type::String, Type::Number, Type::Boolean];
    let any_json = ObjectBuilder::new().schema_type(SchemaType::Array(non_null)).description(Some("Any JSON value"));
    components.schemas.insert(consign_db::JsonText::name().into_owned(), any_json.into());
    for item in api.paths.paths.values_mut() {
        for (method, operation) in operations(item) {
            bound_limit(operation);
            let traits = Traits::of(method, operation);
            if traits.post {
                let declared = operation.parameters.iter().flatten().any(|param| match param {
                    RefOr::T(param) => param.name.eq_ignore_ascii_case(IDEMPOTENCY_KEY),
                    RefOr::Ref(_) => false,
                });
                if !declared {
                    operation.parameters.get_or_insert_with(Vec::new).push(idempotency_key_parameter().into());
                }
            }
            for (status, description) in traits.problems() {
                operation
                    .responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| RefOr::T(problem_response(status, description)));
            }
            for (status, response) in operation.responses.responses.iter_mut() {
                let is_error = status.parse::<u16>().is_ok_and(|status| status >= 400);
                if is_error
                    && let RefOr::T(response) = response
                    && is_problem_or_empty(response)
                {
                    response.content.clear();
                    response.content.insert(PROBLEM_JSON.into(), RefOr::T(problem_content()));
                }
            }
        }
    }
}
