//! What every route of the service answers and checks the same way: JSON
//! error bodies (also for what the framework answers by itself: unknown
//! routes, wrong methods, refused bodies and extractor rejections) and
//! credential comparisons. It imports nothing of the service, so any layer
//! with routes (intake, status sync, click-to-call, the operator API) can use
//! it without pointing back up.
use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

/// A JSON error body: `{"error": "<message>"}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// The router's fallback: a path no route serves.
pub async fn no_route(method: Method, uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no route for {method} {}", uri.path()),
    )
}

/// The router's method fallback: the path exists, the method does not. The
/// router adds the `Allow` header.
pub async fn wrong_method(method: Method, uri: Uri) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} does not take {method}", uri.path()),
    )
}

/// Longest framework error text kept as the message; its rejections are a
/// sentence or two.
const MAX_ERROR_TEXT: usize = 4096;

/// Middleware: an error answer (4xx or 5xx) that is not JSON becomes
/// `{"error": "<its text>"}` with the same status and headers. The routes
/// answer JSON themselves; what this catches is the framework's own answers:
/// extractor rejections (malformed JSON, a wrong content type, a bad path
/// parameter: 400/415/422), the body limit (413), and anything else that
/// arrives as plain text or with no body. A 413 also closes the connection.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let status = response.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        // The body was refused before its end, so the connection cannot carry
        // another request; saying so keeps a client from reusing it while
        // the server closes it.
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    if !(status.is_client_error() || status.is_server_error()) || is_json(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_ERROR_TEXT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let json = error(status, message);
    // Keep what the status carries (`Allow`, `Retry-After`,
    // `WWW-Authenticate`, …); the body's own headers come from the new body.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let (json_parts, json_body) = json.into_parts();
    parts.headers.extend(json_parts.headers);
    Response::from_parts(parts, json_body)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json")
                || mime.to_ascii_lowercase().ends_with("+json")
        })
}

/// A JSON error body with a stable machine-readable code:
/// `{"error": "<message>", "reason": "<code>"}`.
pub fn refusal(status: StatusCode, reason: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": message.into(), "reason": reason })),
    )
        .into_response()
}

/// Byte-wise comparison whose time depends on neither where the inputs
/// differ nor which one is shorter (credentials, tokens, signatures).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// HTTP Basic credentials `user:password` in `Authorization`.
pub fn basic_matches(headers: &HeaderMap, user: &str, password: &str) -> bool {
    use base64::Engine as _;
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{user}:{password}");
    constant_time_eq(&decoded, expected.as_bytes())
}

/// `Authorization: Bearer <token>` with exactly this token.
pub fn bearer_matches(headers: &HeaderMap, token: &SecretString) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| {
            constant_time_eq(given.trim().as_bytes(), token.expose_secret().as_bytes())
        })
}

/// The bearer token is the route's own token or, when one is configured,
/// the operator's admin token.
pub fn bearer_or_admin(
    headers: &HeaderMap,
    token: &SecretString,
    admin: Option<&SecretString>,
) -> bool {
    admin.is_some_and(|admin| bearer_matches(headers, admin)) || bearer_matches(headers, token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn basic_and_bearer_credentials_are_checked_exactly() {
        use base64::Engine as _;
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode("ccai:pw");
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {encoded}").parse().expect("header"),
        );
        assert!(basic_matches(&headers, "ccai", "pw"));
        assert!(!basic_matches(&headers, "ccai", "pw2"));

        let token = SecretString::from("t0ken");
        let admin = SecretString::from("adm1n");
        headers.insert(header::AUTHORIZATION, "Bearer adm1n".parse().expect("h"));
        assert!(bearer_or_admin(&headers, &token, Some(&admin)));
        assert!(!bearer_or_admin(&headers, &token, None));
        headers.insert(header::AUTHORIZATION, "Bearer t0ken".parse().expect("h"));
        assert!(bearer_or_admin(&headers, &token, None));
    }
}
