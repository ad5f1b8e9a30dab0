//! JSON shapes of the Kustomer API: the `{"data":…}` envelope, relationship
//! objects with relative links, list pages and the two error body shapes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// An API error as Kustomer renders it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: String,
    pub detail: Option<String>,
    pub pointer: Option<String>,
    /// Older endpoints answer `{"errors":[{"code","message","meta"}]}`
    /// instead of the JSON:API shape.
    pub simple: bool,
    pub retry_after: Option<i64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, title: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            title: title.into(),
            detail: None,
            pointer: None,
            simple: false,
            retry_after: None,
        }
    }

    /// 400 in the older `{code, message, meta}` shape.
    pub fn bad_request(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "bad_request", message);
        e.simple = true;
        e
    }

    /// 400 in the JSON:API shape, pointing at the offending field.
    pub fn invalid(pointer: &str, detail: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "bad_request", "Bad Request");
        e.detail = Some(detail.into());
        e.pointer = Some(pointer.to_string());
        e
    }

    pub fn unauthorized() -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized");
        e.detail = Some("missing role, invalid auth token, or billing feature".into());
        e
    }

    pub fn not_found(what: &str) -> Self {
        let mut e = Self::new(StatusCode::NOT_FOUND, "not_found", "Not Found");
        e.detail = Some(format!("{what} not found"));
        e
    }

    pub fn conflict(pointer: &str, detail: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::CONFLICT, "duplicate", "Conflict");
        e.detail = Some(detail.into());
        e.pointer = Some(pointer.to_string());
        e
    }

    pub fn too_large() -> Self {
        let mut e = Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_entity_too_large",
            "Payload Too Large",
        );
        e.detail = Some("request body exceeds 100 kb".into());
        e
    }

    pub fn rate_limited(detail: &str) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            "Too Many Requests",
        );
        e.detail = Some(detail.to_string());
        e
    }

    pub fn server_error(status: StatusCode) -> Self {
        Self::new(status, "server_error", "Internal Server Error")
    }

    /// 404 for a path no route serves.
    pub fn no_route(method: &str, path: &str) -> Self {
        let mut e = Self::new(StatusCode::NOT_FOUND, "not_found", "Not Found");
        e.detail = Some(format!("no route for {method} {path}"));
        e
    }

    /// 405 for a known path with a method it does not take.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method Not Allowed",
        );
        e.detail = Some(format!("{method} is not allowed on {path}"));
        e
    }

    pub fn body(&self) -> Value {
        if self.simple {
            return json!({"errors": [{"code": self.code, "message": self.title, "meta": {}}]});
        }
        let mut err = json!({
            "status": self.status.as_u16(),
            "code": self.code,
            "title": self.title,
        });
        if let Some(detail) = &self.detail {
            err["detail"] = json!(detail);
        }
        if let Some(pointer) = &self.pointer {
            err["source"] = json!({ "pointer": pointer });
        }
        json!({ "errors": [err] })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = secs.to_string().parse() {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        resp
    }
}

/// `{"data":{"type":…,"id":…}, "links":{"self":…}}`.
pub fn rel(kind: &str, id: &str, link: &str) -> Value {
    json!({ "data": { "type": kind, "id": id }, "links": { "self": link } })
}

/// A link-only relationship.
pub fn rel_link(link: &str) -> Value {
    json!({ "links": { "self": link } })
}

/// One resource object.
pub fn resource(kind: &str, id: &str, attrs: Value, rels: Map<String, Value>, link: &str) -> Value {
    json!({
        "type": kind,
        "id": id,
        "attributes": attrs,
        "relationships": rels,
        "links": { "self": link },
    })
}

/// `?page=&pageSize=` as lists take them.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    pub page: Option<String>,
    pub page_size: Option<String>,
}

/// The page number and size a list request asks for, validated.
pub fn page_params(q: &PageQuery, max: usize) -> Result<(usize, usize), ApiError> {
    let page = match &q.page {
        None => 1,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|p| *p >= 1)
            .ok_or_else(|| ApiError::invalid("page", "page must be a positive integer"))?,
    };
    let size = match &q.page_size {
        None => max.min(100),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|p| *p >= 1)
            .ok_or_else(|| ApiError::invalid("pageSize", "pageSize must be a positive integer"))?
            .min(max),
    };
    Ok((page, size))
}

/// Slices `items` into one page and wraps it in the list envelope.
/// `base` is the relative path with any other query already applied
/// (ending in `?` or `&`).
pub fn page(items: Vec<Value>, q: &PageQuery, base: &str, max: usize) -> Result<Value, ApiError> {
    page_with(items, q, base, max, |v| v)
}

/// [`page`] over unrendered rows: only the rows on the page are rendered, so
/// a list costs the page, not the whole collection.
pub fn page_with<T>(
    items: Vec<T>,
    q: &PageQuery,
    base: &str,
    max: usize,
    render: impl FnMut(T) -> Value,
) -> Result<Value, ApiError> {
    let (page, size) = page_params(q, max)?;
    let total = items.len();
    let total_pages = total.div_ceil(size).max(1);
    let data: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .map(render)
        .collect();
    let link = |p: usize| json!(format!("{base}page={p}&pageSize={size}"));
    Ok(json!({
        "meta": { "pageSize": size, "page": page, "total": total, "totalPages": total_pages },
        "links": {
            "self": link(page),
            "first": link(1),
            "prev": if page > 1 { link(page - 1) } else { Value::Null },
            "next": if page < total_pages { link(page + 1) } else { Value::Null },
        },
        "data": data,
    }))
}

/// `{"data": resource}`.
pub fn doc(v: Value) -> Value {
    json!({ "data": v })
}
