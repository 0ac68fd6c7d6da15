//! The OpenAPI 3.1 description of the HTTP API, generated from the handlers' annotations and
//! the body types (`utoipa`), served at `/openapi.json`. The web app renders it at `/#/api`.
//!
//! The router is written by hand (its routes carry their own layers), so a test checks the
//! two against each other: every documented operation is served, every route is documented.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::OpenApi;

use crate::AppState;
use crate::{body, ops, routes};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "llmops-rag-pipeline",
        description = "Questions answered from your documents, with citations; uploads and their \
            ingestion; feedback; operations. Errors are `{\"error\": {\"code\", \"message\", \
            \"field\"?, \"trace_id\"?}}`; every response carries `x-request-id` and `x-trace-id`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        routes::query,
        routes::query_stream,
        routes::domains,
        routes::feedback,
        routes::feedback_summary,
        routes::upload,
        routes::list_documents,
        routes::get_document,
        routes::delete_document,
        ops::ops,
        routes::metrics,
        routes::live,
        routes::ready,
        openapi_json,
    ),
    components(schemas(body::TokenEvent, body::ErrorEvent)),
    modifiers(&ApiKeys),
    tags(
        (name = "query", description = "Ask questions"),
        (name = "documents", description = "Upload, list and delete documents"),
        (name = "feedback", description = "Rate answers"),
        (name = "operations", description = "Health, metrics and figures"),
    )
)]
struct ApiDoc;

/// Every `/v1/` operation takes an API key (`Authorization: Bearer <key>`) when the gateway
/// has `gateway.auth.mode = "api_keys"`, and may answer 401, 403 and 429 for it.
struct ApiKeys;

impl utoipa::Modify for ApiKeys {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement};
        use utoipa::openapi::{Ref, RefOr, ResponseBuilder};
        const SCHEME: &str = "api_key";
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                SCHEME,
                utoipa::openapi::security::SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "An API key made with `ragctl keys create`; it names the tenant, \
                             the scopes (query, upload, admin) and the domains.",
                        ))
                        .build(),
                ),
            );
        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        utoipa::openapi::ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            )
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                operation.security =
                    Some(vec![SecurityRequirement::new(SCHEME, Vec::<String>::new())]);
                let responses = &mut operation.responses.responses;
                responses.insert("401".into(), error("No API key, or an unknown one"));
                responses
                    .entry("403".into())
                    .or_insert_with(|| error("The key lacks the scope or the domain"));
                responses.insert(
                    "429".into(),
                    error("The key is over its request rate; retry after `Retry-After` seconds"),
                );
                responses.entry("503".into()).or_insert_with(|| {
                    error("Overloaded or a dependency is unavailable; retry after `Retry-After` seconds")
                });
            }
        }
    }
}

/// The document, with the crate's version.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    env!("CARGO_PKG_VERSION").clone_into(&mut doc.info.version);
    doc
}

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/openapi.json", get(openapi_json))
}

static DOCUMENT_JSON: LazyLock<String> = LazyLock::new(|| match document().to_pretty_json() {
    Ok(json) => json,
    Err(e) => {
        tracing::error!(error = %e, "the OpenAPI document could not be encoded");
        String::from("{}")
    }
});

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object))
)]
pub(crate) async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT_JSON.as_str(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;

    const METHODS: [Method; 7] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
    ];

    /// A gateway whose dependencies are not running: every handler answers quickly (503 or
    /// 4xx), which is all these tests need to tell a served route from an unserved one.
    fn app(dir: &std::path::Path) -> axum::Router {
        let mut settings = rag_config::Settings {
            data_dir: dir.to_path_buf(),
            ..rag_config::Settings::default()
        };
        settings.gateway.router_url = "http://127.0.0.1:9".to_owned();
        settings.gateway.documents_url = "http://127.0.0.1:9".to_owned();
        settings.gateway.request_timeout_ms = 2_000;
        let state = crate::AppState::new(&settings).expect("the test's settings are valid");
        routes::router(state)
    }

    /// `/v1/documents/{id}` → `/v1/documents/x`.
    fn concrete(path: &str) -> String {
        path.split('/')
            .map(|s| {
                if s.starts_with('{') {
                    if s.starts_with("{*") { "a/b" } else { "x" }
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Whether the router serves `method` on `path`: not the fallback's 404, not a 405.
    async fn served(app: &axum::Router, method: Method, path: &str) -> bool {
        let request = Request::builder()
            .method(method)
            .uri(concrete(path))
            .body(Body::empty())
            .expect("a request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        if status == StatusCode::METHOD_NOT_ALLOWED {
            return false;
        }
        if status != StatusCode::NOT_FOUND {
            return true;
        }
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a body");
        let body: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        body["error"]["message"] != routes::NO_SUCH_ROUTE
    }

    fn documented() -> BTreeSet<(String, String)> {
        let doc = serde_json::to_value(document()).expect("the document encodes");
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("a path item").keys() {
                out.insert((path.clone(), method.to_uppercase()));
            }
        }
        out
    }

    /// The route patterns the router holds, read from its `Debug` form (axum lists each
    /// route's path there): the only place the router tells them.
    fn router_paths(app: &axum::Router) -> BTreeSet<String> {
        let text = format!("{app:?}");
        text.split('"')
            .filter(|s| s.starts_with('/') && !s.contains(' '))
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn the_document_is_openapi_3_1_with_schemas() {
        let doc = serde_json::to_value(document()).expect("the document encodes");
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1"))
        );
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for name in [
            "Answer",
            "Citation",
            "QueryBody",
            "FeedbackBody",
            "DocumentView",
            "DocumentList",
            "ErrorBody",
            "OpsSummary",
            "TokenEvent",
        ] {
            assert!(schemas.contains_key(name), "no schema {name}");
        }
        // Every `$ref` names a schema the document has.
        let text = doc.to_string();
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap_or_default();
            assert!(schemas.contains_key(name), "dangling $ref to {name}");
        }
    }

    #[tokio::test]
    async fn every_documented_operation_is_served() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let app = app(dir.path());
        let documented = documented();
        assert!(documented.len() >= 14, "{documented:?}");
        for (path, method) in &documented {
            let method = Method::from_bytes(method.as_bytes()).expect("a method");
            assert!(
                served(&app, method.clone(), path).await,
                "documented but not served: {method} {path}"
            );
        }
    }

    #[tokio::test]
    async fn every_route_is_documented() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let app = app(dir.path());
        let documented = documented();
        let paths = router_paths(&app);
        // The Debug form must still name the routes, or this test would check nothing.
        assert!(
            paths.contains("/v1/query") && paths.contains("/v1/documents/{id}"),
            "the router's routes were not found in its Debug form: {paths:?}"
        );
        let mut undocumented = Vec::new();
        for path in paths
            .iter()
            .filter(|p| !crate::web::is_static_route(p.as_str()))
        {
            for method in METHODS {
                // HEAD is served wherever GET is, and OPTIONS nowhere; neither is documented.
                if method == Method::HEAD || method == Method::OPTIONS {
                    continue;
                }
                if served(&app, method.clone(), path).await
                    && !documented.contains(&(path.clone(), method.to_string()))
                {
                    undocumented.push(format!("{method} {path}"));
                }
            }
        }
        assert!(
            undocumented.is_empty(),
            "served but not documented: {undocumented:?}"
        );
        // The web app is served too (and is all the router has besides the API).
        for path in paths.iter().filter(|p| crate::web::is_static_route(p)) {
            assert!(served(&app, Method::GET, path).await, "{path}");
        }
    }

    #[tokio::test]
    async fn an_unknown_path_or_method_is_not_served() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let app = app(dir.path());
        assert!(!served(&app, Method::GET, "/v1/nothing").await);
        assert!(!served(&app, Method::PUT, "/v1/query").await);
    }
}
