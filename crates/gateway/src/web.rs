//! The web app: plain HTML, CSS and JavaScript modules from `crates/gateway/web/`, embedded
//! in the binary (it works offline, nothing is fetched from elsewhere), served at `/` and
//! `/app/…`. Pages are hash routes of the one HTML page (`/#/ask`, `/#/documents`, `/#/ops`,
//! `/#/api`); they talk to the API like any client.
//!
//! Every file goes out with a strict Content-Security-Policy: scripts, styles, images and
//! requests from this origin only, no inline code, no framing.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rag_core::ServiceError;

use crate::AppState;
use crate::error::ApiError;

/// Same-origin everything, nothing inline, no plugins, no framing, no `<base>` tricks.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; \
    manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The route patterns of the web app's files (the OpenAPI document leaves them out).
const STATIC_ROUTES: [&str; 2] = ["/", "/app/{*file}"];

/// An embedded file: its name under `/app/`, its content type and its bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("../web/app/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

const ASSETS: &[Asset] = &[
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("main.js", JS),
    asset!("api.js", JS),
    asset!("sse.js", JS),
    asset!("dom.js", JS),
    asset!("ask.js", JS),
    asset!("documents.js", JS),
    asset!("ops.js", JS),
    asset!("apidocs.js", JS),
];

const INDEX: &[u8] = include_bytes!("../web/index.html");

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route(STATIC_ROUTES[0], get(index))
        .route(STATIC_ROUTES[1], get(asset))
}

/// Whether a route pattern is one of the web app's files.
#[cfg(test)]
pub fn is_static_route(pattern: &str) -> bool {
    STATIC_ROUTES.contains(&pattern)
}

async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .map(|a| file(a.content_type, a.bytes))
        .ok_or_else(|| ApiError(ServiceError::not_found(format!("no file {name:?}"))))
}

fn file(content_type: &'static str, bytes: &'static [u8]) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Embedded in the binary: a new build is new content, so always revalidate.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    fn app() -> axum::Router {
        axum::Router::new()
            .route(STATIC_ROUTES[0], get(index))
            .route(STATIC_ROUTES[1], get(asset))
    }

    async fn fetch(path: &str) -> (StatusCode, Option<String>, Option<String>, String) {
        let response = app()
            .oneshot(Request::get(path).body(Body::empty()).expect("a request"))
            .await
            .expect("infallible");
        let header = |name: header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (status, ct, csp) = (
            response.status(),
            header(header::CONTENT_TYPE),
            header(header::CONTENT_SECURITY_POLICY),
        );
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
            .await
            .expect("a body");
        (
            status,
            ct,
            csp,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    #[tokio::test]
    async fn serves_the_page_and_its_files_with_their_types_and_the_policy() {
        let (status, ct, csp, body) = fetch("/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct.as_deref(), Some("text/html; charset=utf-8"));
        assert_eq!(csp.as_deref(), Some(CONTENT_SECURITY_POLICY));
        assert!(body.contains("<script type=\"module\" src=\"/app/main.js\">"));
        for (path, ty) in [
            ("/app/main.js", "text/javascript; charset=utf-8"),
            ("/app/style.css", "text/css; charset=utf-8"),
            ("/app/icon.svg", "image/svg+xml"),
        ] {
            let (status, ct, csp, body) = fetch(path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(ct.as_deref(), Some(ty), "{path}");
            assert!(csp.is_some(), "{path}");
            assert!(!body.is_empty(), "{path}");
        }
        let (status, ..) = fetch("/app/nothing.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, ..) = fetch("/app/../Cargo.toml").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    /// The page and every module refer only to files that are served (a module added to
    /// `web/app/` but not to `ASSETS` would 404 in the browser).
    #[tokio::test]
    async fn every_referenced_file_is_embedded() {
        let mut texts = vec![String::from_utf8_lossy(INDEX).into_owned()];
        texts.extend(
            ASSETS
                .iter()
                .map(|a| String::from_utf8_lossy(a.bytes).into_owned()),
        );
        for text in &texts {
            for part in text.split("/app/").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                    .collect();
                if name.is_empty() {
                    continue;
                }
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "/app/{name} is referenced but not embedded"
                );
            }
            for part in text.split("from './").skip(1) {
                let name: String = part.chars().take_while(|c| *c != '\'').collect();
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "./{name} is imported but not embedded"
                );
            }
        }
        // No inline script or style: the policy would block them.
        let index = String::from_utf8_lossy(INDEX);
        assert!(!index.contains("style=\""));
        assert!(!index.contains("<style"));
        assert!(!index.contains("onclick"));
        assert_eq!(index.matches("<script").count(), 1);
    }
}
