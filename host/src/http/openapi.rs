//! `GET /openapi.json`: the OpenAPI 3.1 description of every route. Each
//! module registers its routes from its handlers' `#[utoipa::path]`
//! annotations (`utoipa_axum::routes!`), so the description and the router
//! are made from the same source; this module adds what is common (title,
//! version, credentials) and serves the result.
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, OnceLock};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi};
use utoipa_axum::{router::OpenApiRouter, routes};

/// The served description, set once every router is built.
pub type Published = Arc<OnceLock<String>>;

/// The route serving the description; [`publish`] fills it in.
pub fn router(published: Published) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .with_state(published)
}

#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This description (OpenAPI 3.1)", content_type = "application/json")))]
async fn openapi_json(State(published): State<Published>) -> Response {
    let body = published.get().cloned().unwrap_or_else(|| "{}".into());
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Names the service and its credentials in the routes' description and
/// stores it for `GET /openapi.json`.
pub fn publish(published: &Published, paths: OpenApi) -> OpenApi {
    let api = describe(paths);
    let _ = published.set(api.to_pretty_json().unwrap_or_else(|_| "{}".into()));
    api
}

/// The description with the service's title, version and credentials.
pub fn describe(mut api: OpenApi) -> OpenApi {
    api.info = InfoBuilder::new()
        .title("Switchboard")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "CCAI Platform to Kustomer sidecar: the intake the contact centre posts to, \
             the routes the Kustomer app and the agent adapter call, and the operator's \
             health, metrics and admin routes.",
        ))
        .build();
    let components = api.components.get_or_insert_with(Default::default);
    let bearer = |what: &str| {
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(what.to_string()))
                .build(),
        )
    };
    let header = |name: &str, what: &str| {
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(name, what)))
    };
    components.add_security_scheme("admin_token", bearer("`server.admin_token`"));
    components.add_security_scheme(
        "agent_token",
        bearer("the tenant's `status_sync.token` or `click_to_call.token`"),
    );
    components.add_security_scheme(
        "session_events",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Basic)
                .description(Some(
                    "the tenant's `ccai.events_username` and `ccai.events_password`",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "chat_signature",
        header(
            "X-Signature",
            "HMAC-SHA256 of the body under `ccai.webhook_primary_secret` (or the secondary)",
        ),
    );
    components.add_security_scheme(
        "kustomer_signature",
        header(
            "X-Kustomer-Webhook-Signature",
            "HMAC-SHA256 of the body under `kustomer.webhook_token`",
        ),
    );
    api
}
