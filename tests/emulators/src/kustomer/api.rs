//! The `/v1` routes (and the S3-style upload route the attachment flow
//! points at).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::objects::{self as o};
use super::org;
use super::render::{doc, page, page_with, ApiError, PageQuery};
use super::server::{lock, App};
use super::state::{Inner, Record, Row, Settings, Table};
use super::{multipart, search};

/// Bodies above this are refused with 413, as Kustomer does.
const MAX_BODY: usize = 100 * 1024;

type ApiResult = Result<Response, ApiError>;

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/v1/customers", post(customer_create).get(customer_list))
        .route("/v1/customers/search", post(customer_search))
        .route(
            "/v1/customers/archive/search",
            post(customer_archive_search),
        )
        .route(
            "/v1/customers/{key}",
            get(customer_get)
                .patch(customer_update)
                .put(customer_update),
        )
        .route(
            "/v1/customers/{id}/conversations",
            get(customer_conversations).post(customer_conversation_create),
        )
        .route(
            "/v1/customers/{id}/messages",
            get(customer_messages).post(customer_message_create),
        )
        .route(
            "/v1/conversations",
            post(conversation_create).get(conversation_list),
        )
        .route(
            "/v1/conversations/{key}",
            get(conversation_get)
                .patch(conversation_update)
                .put(conversation_update),
        )
        .route(
            "/v1/conversations/{id}/messages",
            get(conversation_messages).post(conversation_message_create),
        )
        .route(
            "/v1/conversations/{id}/notes",
            get(conversation_notes).post(note_create),
        )
        .route("/v1/messages", post(message_create).get(message_list))
        .route("/v1/customers/{id}/notes", get(customer_notes))
        .route("/v1/notes", post(note_create_top))
        .route(
            "/v1/messages/{key}",
            get(message_get).patch(message_update).put(message_update),
        )
        .route("/v1/notes/{key}", get(note_get))
        .route("/v1/attachments", post(attachment_create))
        .route("/v1/attachments/{id}", get(attachment_get))
        .route("/__upload/attachments", post(upload))
        .route(
            "/v1/metadata/{resource}",
            get(metadata_get).put(metadata_put),
        )
        .route("/v1/users", get(user_list))
        .route("/v1/users/current", get(user_current))
        .route("/v1/auth/tokens/current", get(token_current))
        .route("/v1/users/{id}/teams", get(user_teams))
        .route(
            "/v1/teams",
            get(
                |State(app): State<App>, Query(q): Query<ListQuery>| async move {
                    seeded_list(&app, &q, &TEAMS)
                },
            ),
        )
        .route(
            "/v1/teams/{id}",
            get(
                |State(app): State<App>, Path(id): Path<String>| async move {
                    seeded_get(&app, &id, &TEAMS)
                },
            ),
        )
        .route(
            "/v1/tags",
            get(
                |State(app): State<App>, Query(q): Query<ListQuery>| async move {
                    seeded_list(&app, &q, &TAGS)
                },
            ),
        )
        .route(
            "/v1/tags/{id}",
            get(
                |State(app): State<App>, Path(id): Path<String>| async move {
                    seeded_get(&app, &id, &TAGS)
                },
            ),
        )
        .route("/v1/klasses/{name}", get(kobject_list).post(kobject_create))
        .route("/v1/klasses/{name}/{id}", get(kobject_get))
        .route(
            "/v1/customers/{id}/klasses/{name}",
            get(customer_kobjects).post(customer_kobject_create),
        )
        .route(
            "/v1/shortcuts",
            get(
                |State(app): State<App>, Query(q): Query<ListQuery>| async move {
                    seeded_list(&app, &q, &SHORTCUTS)
                },
            ),
        )
        .route(
            "/v1/shortcuts/{id}",
            get(
                |State(app): State<App>, Path(id): Path<String>| async move {
                    seeded_get(&app, &id, &SHORTCUTS)
                },
            ),
        )
        .route("/v1/users/{id}", get(user_get))
        .route("/v1/routing/statuses", get(status_list))
        .route("/v1/routing/work-sessions", get(work_session_list))
        .route(
            "/v1/routing/work-sessions/{id}",
            get(work_session_get).put(work_session_put),
        )
        .route(
            "/v1/routing/users/{id}/work-sessions",
            get(user_work_sessions),
        )
}

/// Query parameters any list takes.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    sort: Option<String>,
    email: Option<String>,
    user: Option<String>,
    active: Option<String>,
}

impl ListQuery {
    fn paging(&self) -> PageQuery {
        PageQuery {
            page: self.page.clone(),
            page_size: self.page_size.clone(),
        }
    }

    /// Orders rows by creation, or by id when `by_id` (Kustomer documents
    /// `sort` as ordering by id); `sort=desc` gives the newest (highest)
    /// first.
    fn order<'a, T: Row>(
        &self,
        mut items: Vec<&'a T>,
        by_id: bool,
        default_desc: bool,
    ) -> Result<Vec<&'a T>, ApiError> {
        let desc = match self.sort.as_deref() {
            None => default_desc,
            Some("desc") => true,
            Some("asc") => false,
            Some(other) => {
                return Err(ApiError::invalid(
                    "sort",
                    format!("sort {other} is not asc|desc"),
                ))
            }
        };
        if by_id {
            items.sort_by(|a, b| a.id().cmp(b.id()));
        }
        if desc {
            items.reverse();
        }
        Ok(items)
    }

    fn base(&self, path: &str) -> String {
        match &self.sort {
            Some(s) => format!("{path}?sort={s}&"),
            None => format!("{path}?"),
        }
    }
}

fn json_body(bytes: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if bytes.len() > MAX_BODY {
        return Err(ApiError::too_large());
    }
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::bad_request("Invalid request body or parameters.")),
    }
}

fn created(v: Value) -> ApiResult {
    Ok((StatusCode::CREATED, Json(doc(v))).into_response())
}

fn ok(v: Value) -> ApiResult {
    Ok((StatusCode::OK, Json(doc(v))).into_response())
}

fn list(v: Value) -> ApiResult {
    Ok((StatusCode::OK, Json(v)).into_response())
}

fn read<R>(app: &App, f: impl FnOnce(&Inner) -> R) -> R {
    let inner = lock(&app.state);
    f(&inner)
}

// ---------------------------------------------------------------- customers

async fn customer_create(State(app): State<App>, body: Bytes) -> ApiResult {
    let body = json_body(&body)?;
    created(app.write(|i| o::create_customer(i, body))?)
}

async fn customer_list(State(app): State<App>, Query(q): Query<ListQuery>) -> ApiResult {
    list(read(&app, |i| {
        let rows = q.order(
            i.db.customers.iter().collect(),
            i.settings.sort_lists_by_id,
            false,
        )?;
        page_with(rows, &q.paging(), &q.base("/v1/customers"), 100, |c| {
            o::render_customer(&i.db, &i.settings, c)
        })
    })?)
}

async fn customer_get(State(app): State<App>, Path(key): Path<String>) -> ApiResult {
    read(&app, |i| {
        o::find_customer(&i.db, &key)
            .map(|c| o::render_customer(&i.db, &i.settings, c))
            .ok_or_else(|| ApiError::not_found("customer"))
    })
    .and_then(ok)
}

async fn customer_update(
    State(app): State<App>,
    Path(key): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    let id = read(&app, |i| {
        o::find_customer(&i.db, &key).map(|c| c.id.clone())
    })
    .ok_or_else(|| ApiError::not_found("customer"))?;
    ok(app.write(|i| o::update_customer(i, &id, body))?)
}

fn customer_exists(app: &App, id: &str) -> Result<(), ApiError> {
    if read(app, |i| i.db.customer(id).is_some()) {
        Ok(())
    } else {
        Err(ApiError::not_found("customer"))
    }
}

async fn customer_conversations(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    customer_exists(&app, &id)?;
    let base = q.base(&format!("/v1/customers/{id}/conversations"));
    list(read(&app, |i| {
        let rows = q.order(
            i.db.conversations_of(&id).collect(),
            i.settings.sort_lists_by_id,
            true,
        )?;
        page_with(rows, &q.paging(), &base, 100, |c| {
            o::render_conversation(&i.settings, c)
        })
    })?)
}

async fn customer_conversation_create(
    State(app): State<App>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    customer_exists(&app, &id)?;
    created(app.write(|i| o::create_conversation(i, body, Some(&id), true))?)
}

async fn customer_messages(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    customer_exists(&app, &id)?;
    let base = q.base(&format!("/v1/customers/{id}/messages"));
    list(read(&app, |i| {
        let rows = q.order(
            i.db.messages_of_customer(&id).collect(),
            i.settings.sort_lists_by_id,
            false,
        )?;
        page_with(rows, &q.paging(), &base, 100, |m| {
            o::render_message(&i.settings, m)
        })
    })?)
}

async fn customer_message_create(
    State(app): State<App>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    customer_exists(&app, &id)?;
    created(app.write(|i| o::create_message(i, body, None, Some(&id)))?)
}

// ------------------------------------------------------------ conversations

async fn conversation_create(State(app): State<App>, body: Bytes) -> ApiResult {
    let body = json_body(&body)?;
    created(app.write(|i| o::create_conversation(i, body, None, true))?)
}

async fn conversation_list(State(app): State<App>, Query(q): Query<ListQuery>) -> ApiResult {
    list(read(&app, |i| {
        let rows = q.order(
            i.db.conversations.iter().collect(),
            i.settings.sort_lists_by_id,
            false,
        )?;
        page_with(rows, &q.paging(), &q.base("/v1/conversations"), 100, |c| {
            o::render_conversation(&i.settings, c)
        })
    })?)
}

async fn conversation_get(State(app): State<App>, Path(key): Path<String>) -> ApiResult {
    read(&app, |i| {
        o::find_conversation(&i.db, &key)
            .map(|c| o::render_conversation(&i.settings, c))
            .ok_or_else(|| ApiError::not_found("conversation"))
    })
    .and_then(ok)
}

async fn conversation_update(
    State(app): State<App>,
    Path(key): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    let id = read(&app, |i| {
        o::find_conversation(&i.db, &key).map(|c| c.id.clone())
    })
    .ok_or_else(|| ApiError::not_found("conversation"))?;
    ok(app.write(|i| o::update_conversation(i, &id, body))?)
}

fn conversation_exists(app: &App, id: &str) -> Result<(), ApiError> {
    if read(app, |i| i.db.conversation(id).is_some()) {
        Ok(())
    } else {
        Err(ApiError::not_found("conversation"))
    }
}

async fn conversation_messages(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    conversation_exists(&app, &id)?;
    let base = q.base(&format!("/v1/conversations/{id}/messages"));
    list(read(&app, |i| {
        let rows = q.order(
            i.db.messages_of_conversation(&id).collect(),
            i.settings.sort_lists_by_id,
            false,
        )?;
        page_with(rows, &q.paging(), &base, 100, |m| {
            o::render_message(&i.settings, m)
        })
    })?)
}

async fn conversation_message_create(
    State(app): State<App>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    conversation_exists(&app, &id)?;
    created(app.write(|i| o::create_message(i, body, Some(&id), None))?)
}

async fn conversation_notes(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    conversation_exists(&app, &id)?;
    let base = q.base(&format!("/v1/conversations/{id}/notes"));
    list(read(&app, |i| {
        let rows = q.order(
            i.db.notes_of_conversation(&id).collect(),
            i.settings.sort_lists_by_id,
            false,
        )?;
        page_with(rows, &q.paging(), &base, 100, |n| {
            o::render_note(&i.settings, n)
        })
    })?)
}

async fn note_create(State(app): State<App>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let body = json_body(&body)?;
    created(app.write(|i| o::create_note(i, &id, body))?)
}

// ------------------------------------------------------- messages and notes

async fn message_create(State(app): State<App>, body: Bytes) -> ApiResult {
    let body = json_body(&body)?;
    created(app.write(|i| o::create_message(i, body, None, None))?)
}

async fn message_get(State(app): State<App>, Path(key): Path<String>) -> ApiResult {
    read(&app, |i| {
        o::find_message(&i.db, &key)
            .map(|m| o::render_message(&i.settings, m))
            .ok_or_else(|| ApiError::not_found("message"))
    })
    .and_then(ok)
}

async fn message_update(State(app): State<App>, Path(key): Path<String>, body: Bytes) -> ApiResult {
    let body = json_body(&body)?;
    let id = read(&app, |i| o::find_message(&i.db, &key).map(|m| m.id.clone()))
        .ok_or_else(|| ApiError::not_found("message"))?;
    ok(app.write(|i| o::update_message(i, &id, body))?)
}

async fn note_get(State(app): State<App>, Path(key): Path<String>) -> ApiResult {
    read(&app, |i| {
        o::find_note(&i.db, &key)
            .map(|n| o::render_note(&i.settings, n))
            .ok_or_else(|| ApiError::not_found("note"))
    })
    .and_then(ok)
}

// -------------------------------------------------------------- attachments

async fn attachment_create(State(app): State<App>, body: Bytes) -> ApiResult {
    let body = json_body(&body)?;
    let base = app.base_url.clone();
    created(app.write(|i| o::create_attachment(i, &base, body))?)
}

async fn attachment_get(State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    read(&app, |i| {
        i.db.attachments
            .get(&id)
            .map(|a| o::render_attachment(&i.settings, a))
            .ok_or_else(|| ApiError::not_found("attachment"))
    })
    .and_then(ok)
}

/// The presigned-POST target: no Bearer auth (the policy fields are the
/// credential), answers 204 like S3.
async fn upload(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let parsed = multipart::boundary(ct)
        .ok_or_else(|| "expected multipart/form-data".to_string())
        .and_then(|b| multipart::parse(&body, &b));
    match parsed.and_then(|parts| app.write(|i| o::complete_upload(i, parts))) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(msg) => (
            StatusCode::BAD_REQUEST,
            format!("<Error><Code>InvalidArgument</Code><Message>{msg}</Message></Error>"),
        )
            .into_response(),
    }
}

// ---------------------------------------------------------------- metadata

fn check_resource(resource: &str) -> Result<(), ApiError> {
    if o::METADATA_RESOURCES.contains(&resource) || resource.starts_with("kobject.") {
        Ok(())
    } else {
        Err(ApiError::not_found("metadata resource"))
    }
}

async fn metadata_get(State(app): State<App>, Path(resource): Path<String>) -> ApiResult {
    check_resource(&resource)?;
    ok(read(&app, |i| o::render_metadata(i, &resource)))
}

async fn metadata_put(
    State(app): State<App>,
    Path(resource): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    check_resource(&resource)?;
    ok(app.write(|i| o::put_metadata(i, &resource, body))?)
}

// ------------------------------------------------------------------ routing

async fn user_list(State(app): State<App>, Query(q): Query<ListQuery>) -> ApiResult {
    let items = read(&app, |i| {
        i.db.users
            .iter()
            .filter(|u| {
                q.email.as_deref().is_none_or(|e| {
                    u.attrs
                        .get("email")
                        .and_then(Value::as_str)
                        .is_some_and(|x| x.eq_ignore_ascii_case(e))
                })
            })
            .map(|u| o::render_user(&i.settings, u))
            .collect()
    });
    let base = match &q.email {
        Some(e) => format!("/v1/users?email={e}&"),
        None => "/v1/users?".to_string(),
    };
    list(page(items, &q.paging(), &base, 500)?)
}

async fn user_get(State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    read(&app, |i| {
        i.db.users
            .get(&id)
            .map(|u| o::render_user(&i.settings, u))
            .ok_or_else(|| ApiError::not_found("user"))
    })
    .and_then(ok)
}

async fn status_list(State(app): State<App>, Query(q): Query<ListQuery>) -> ApiResult {
    let items = read(&app, |i| {
        i.db.statuses
            .iter()
            .map(|s| o::render_status(&i.settings, s))
            .collect()
    });
    list(page(items, &q.paging(), "/v1/routing/statuses?", 100)?)
}

fn sessions(app: &App, user: Option<&str>, active: Option<&str>) -> Vec<Value> {
    read(app, |i| {
        i.db.work_sessions
            .iter()
            .filter(|w| user.is_none_or(|u| w.user_id == u))
            .filter(|w| {
                active.is_none_or(|a| {
                    w.attrs.get("active").and_then(Value::as_bool) == Some(a == "true")
                })
            })
            .map(|w| o::render_work_session(&i.settings, w))
            .collect()
    })
}

async fn work_session_list(State(app): State<App>, Query(q): Query<ListQuery>) -> ApiResult {
    let items = sessions(&app, q.user.as_deref(), q.active.as_deref());
    list(page(items, &q.paging(), "/v1/routing/work-sessions?", 100)?)
}

async fn user_work_sessions(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let items = sessions(&app, Some(&id), q.active.as_deref());
    let base = format!("/v1/routing/users/{id}/work-sessions?");
    list(page(items, &q.paging(), &base, 100)?)
}

async fn work_session_get(State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    read(&app, |i| {
        i.db.work_sessions
            .get(&id)
            .map(|w| o::render_work_session(&i.settings, w))
            .ok_or_else(|| ApiError::not_found("work session"))
    })
    .and_then(ok)
}

async fn work_session_put(
    State(app): State<App>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    ok(app.write(|i| o::update_work_session(i, &id, body))?)
}

// ------------------------------------------------------------------ search

async fn customer_search(
    State(app): State<App>,
    Query(q): Query<PageQuery>,
    body: Bytes,
) -> ApiResult {
    search_with(app, q, body, false).await
}

async fn customer_archive_search(
    State(app): State<App>,
    Query(q): Query<PageQuery>,
    body: Bytes,
) -> ApiResult {
    search_with(app, q, body, true).await
}

async fn search_with(app: App, q: PageQuery, body: Bytes, archive: bool) -> ApiResult {
    let body = json_body(&body)?;
    let charged = app.write(|i| {
        let now = i.now().timestamp();
        i.charge_search().map_err(|reset| reset - now)
    });
    if let Err(wait) = charged {
        let mut e = ApiError::rate_limited("search limit of 100 per minute for API keys reached");
        e.retry_after = Some(wait.max(1));
        return Err(e);
    }
    list(read(&app, |i| search::run(i, &body, &q, archive))?)
}

// ------------------------------------------------- users, teams, tags, shortcuts

/// `GET /v1/users/current`: the user the API key acts as.
async fn user_current(State(app): State<App>) -> ApiResult {
    read(&app, |i| {
        i.db.users
            .get(&i.settings.machine_user_id)
            .map(|u| o::render_user(&i.settings, u))
            .ok_or_else(|| ApiError::not_found("user"))
    })
    .and_then(ok)
}

async fn token_current(State(app): State<App>) -> ApiResult {
    ok(read(&app, org::render_token))
}

/// A seeded, read-only collection (teams, tags, shortcuts): where its rows
/// live, its path, its page-size cap and how a row renders.
struct Seeded {
    name: &'static str,
    path: &'static str,
    max_page: usize,
    rows: fn(&Inner) -> &Table<Record>,
    render: fn(&Settings, &Record) -> Value,
}

const TEAMS: Seeded = Seeded {
    name: "team",
    path: "/v1/teams",
    max_page: 500,
    rows: |i| &i.db.teams,
    render: org::render_team,
};

const TAGS: Seeded = Seeded {
    name: "tag",
    path: "/v1/tags",
    max_page: 100,
    rows: |i| &i.db.tags,
    render: org::render_tag,
};

const SHORTCUTS: Seeded = Seeded {
    name: "shortcut",
    path: "/v1/shortcuts",
    max_page: 100,
    rows: |i| &i.db.shortcuts,
    render: org::render_shortcut,
};

fn seeded_list(app: &App, q: &ListQuery, kind: &Seeded) -> ApiResult {
    list(read(app, |i| {
        let rows = q.order(
            (kind.rows)(i).iter().collect(),
            i.settings.sort_lists_by_id,
            false,
        )?;
        page_with(rows, &q.paging(), &q.base(kind.path), kind.max_page, |r| {
            (kind.render)(&i.settings, r)
        })
    })?)
}

fn seeded_get(app: &App, id: &str, kind: &Seeded) -> ApiResult {
    read(app, |i| {
        (kind.rows)(i)
            .get(id)
            .map(|r| (kind.render)(&i.settings, r))
            .ok_or_else(|| ApiError::not_found(kind.name))
    })
    .and_then(ok)
}

// ----------------------------------------------------------------- fallbacks

/// Any path no route serves: a Kustomer 404 body, not an empty one.
pub(crate) async fn no_route(method: Method, uri: Uri) -> Response {
    ApiError::no_route(method.as_str(), uri.path()).into_response()
}

/// A served path with a method it does not take.
pub(crate) async fn wrong_method(method: Method, uri: Uri) -> Response {
    ApiError::method_not_allowed(method.as_str(), uri.path()).into_response()
}

// ----------------------------------------------------------------- KObjects

async fn kobject_list(
    State(app): State<App>,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let base = q.base(&format!("/v1/klasses/{name}"));
    list(read(&app, |i| {
        let rows = q.order(
            i.db.kobjects_of_klass(&name).collect(),
            i.settings.sort_lists_by_id,
            false,
        )?;
        page_with(rows, &q.paging(), &base, 100, |k| {
            org::render_kobject(&i.settings, k)
        })
    })?)
}

async fn kobject_create(
    State(app): State<App>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    created(app.write(|i| org::create_kobject(i, &name, None, body))?)
}

async fn kobject_get(
    State(app): State<App>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult {
    read(&app, |i| {
        i.db.kobjects
            .get(&id)
            .filter(|k| k.klass == name)
            .map(|k| org::render_kobject(&i.settings, k))
            .ok_or_else(|| ApiError::not_found("kobject"))
    })
    .and_then(ok)
}

async fn customer_kobjects(
    State(app): State<App>,
    Path((id, name)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    customer_exists(&app, &id)?;
    let base = q.base(&format!("/v1/customers/{id}/klasses/{name}"));
    list(read(&app, |i| {
        let rows = q.order(
            i.db.kobjects_of_customer(&id)
                .filter(|k| k.klass == name)
                .collect(),
            i.settings.sort_lists_by_id,
            false,
        )?;
        page_with(rows, &q.paging(), &base, 100, |k| {
            org::render_kobject(&i.settings, k)
        })
    })?)
}

async fn customer_kobject_create(
    State(app): State<App>,
    Path((id, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    customer_exists(&app, &id)?;
    created(app.write(|i| org::create_kobject(i, &name, Some(&id), body))?)
}

// --------------------------------------------------- more message and note lists

async fn message_list(State(app): State<App>, Query(q): Query<ListQuery>) -> ApiResult {
    list(read(&app, |i| {
        let rows = q.order(
            i.db.messages.iter().collect(),
            i.settings.sort_lists_by_id,
            false,
        )?;
        page_with(rows, &q.paging(), &q.base("/v1/messages"), 100, |m| {
            o::render_message(&i.settings, m)
        })
    })?)
}

async fn customer_notes(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    customer_exists(&app, &id)?;
    let base = q.base(&format!("/v1/customers/{id}/notes"));
    list(read(&app, |i| {
        let rows = q.order(
            i.db.notes_of_customer(&id).collect(),
            i.settings.sort_lists_by_id,
            false,
        )?;
        page_with(rows, &q.paging(), &base, 100, |n| {
            o::render_note(&i.settings, n)
        })
    })?)
}

/// `POST /v1/notes`: the conversation comes in the body.
async fn note_create_top(State(app): State<App>, body: Bytes) -> ApiResult {
    let body = json_body(&body)?;
    let conversation = match body.get("conversation") {
        Some(serde_json::Value::String(c)) => c.clone(),
        _ => {
            return Err(ApiError::invalid(
                "/conversation",
                "conversation is required",
            ))
        }
    };
    created(app.write(|i| o::create_note(i, &conversation, body))?)
}

/// `GET /v1/users/{id}/teams`: the teams listing the user as a member.
async fn user_teams(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let base = q.base(&format!("/v1/users/{id}/teams"));
    list(read(&app, |i| {
        if !i.db.users.contains(&id) {
            return Err(ApiError::not_found("user"));
        }
        // Teams are org configuration (a handful), not traffic: a pass is fine.
        let rows =
            i.db.teams
                .iter()
                .filter(|t| {
                    t.attrs
                        .get("members")
                        .and_then(serde_json::Value::as_array)
                        .is_some_and(|m| m.iter().any(|x| x.as_str() == Some(id.as_str())))
                })
                .collect();
        let rows = q.order(rows, i.settings.sort_lists_by_id, false)?;
        page_with(rows, &q.paging(), &base, 500, |t| {
            org::render_team(&i.settings, t)
        })
    })?)
}
