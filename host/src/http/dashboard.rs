//! The operator dashboard (`GET /ui`): one static page (HTML, CSS and plain
//! JavaScript, embedded in the binary, nothing fetched from anywhere else)
//! that reads the admin API. The operator enters the admin token
//! (`server.admin_token`) once; the page keeps it in the tab's
//! `sessionStorage` and sends it as `Authorization: Bearer …`. Like the
//! admin API, the dashboard is off (404) without an admin token.
//!
//! - `GET /ui`, `GET /ui/{name}` (`app.js`, `style.css`): the page, which
//!   holds no data
//!
//! What the page shows comes from these routes, behind the admin token, and
//! from the admin API's own (modules and rollback, the shadow report, retry
//! and skip) and the status sync's agents route, which takes the admin token
//! too. Every route is registered from its OpenAPI annotation.
//!
//! - `GET /admin/overview`: every configured tenant with its events by state,
//!   its live module, its shadow (if one runs) and how its decisions compare,
//!   and the failed and dead-lettered events, newest first
//! - `GET /admin/tenants/{t}/events/{event_id}`: one event's timeline: the
//!   inbox row (state, attempts, latest reason), the recorded decision (plan,
//!   context, module version) and outcome, the Kustomer conversation of its
//!   session, the session's merged ledger and the transitions derived from it,
//!   and the shadow's verdict on it
//!
//! What a timeline cannot show, because nothing records it: the time and
//! reason of each attempt (only their count and the latest reason), which of
//! a plan's actions were carried out before a failure, when and by whom an
//! event was retried or skipped, the decisions of earlier attempts (a retry
//! whose decision failed decides afresh, replacing it), and the shadow's plan
//! when it matched the live one.
use super::admin::admin_only;
use super::AppState;
use crate::runtime::{ShadowInfo, VersionInfo};
use crate::store::{InboxRow, InboxStatus, Outcome, SessionLink, ShadowReport};
use crate::web::error;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const STYLE_CSS: &str = include_str!("dashboard/style.css");

/// Failed and dead-lettered events listed per tenant in the overview.
const LISTED_PER_TENANT: usize = 50;

/// What the page may load and call: its own origin only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The page, its assets and the JSON routes it reads, each registered from
/// its OpenAPI annotation.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(page))
        .routes(routes!(page_file))
        .routes(routes!(overview))
        .routes(routes!(timeline))
}

/// One embedded asset by name, with its content type.
fn embedded(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "index.html" => Some((INDEX_HTML, "text/html; charset=utf-8")),
        "app.js" => Some((APP_JS, "text/javascript; charset=utf-8")),
        "style.css" => Some((STYLE_CSS, "text/css; charset=utf-8")),
        _ => None,
    }
}

#[utoipa::path(get, path = "/ui", tag = "dashboard",
    responses((status = 200, description = "The operator dashboard (HTML); it asks for the admin token", content_type = "text/html"),
        (status = 404, description = "The dashboard is off: no `server.admin_token`")))]
async fn page(State(state): State<AppState>) -> Response {
    asset(&state, "index.html")
}

#[utoipa::path(get, path = "/ui/{name}", tag = "dashboard",
    params(("name" = String, Path, description = "`app.js` or `style.css`")),
    responses((status = 200, description = "A file of the dashboard"),
        (status = 404, description = "No such file, or the dashboard is off")))]
async fn page_file(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    asset(&state, &name)
}

/// An embedded file, with headers that keep the page to its own origin.
fn asset(state: &AppState, name: &str) -> Response {
    if state.admin_token.is_none() {
        return error(
            StatusCode::NOT_FOUND,
            "the dashboard is off: set server.admin_token",
        );
    }
    let Some((body, content_type)) = embedded(name) else {
        return error(StatusCode::NOT_FOUND, format!("no dashboard file `{name}`"));
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
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
    response
}

/// A tenant's events by state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
struct StateCounts {
    pending: usize,
    done: usize,
    failed: usize,
    dead: usize,
    skipped: usize,
    total: usize,
}

impl StateCounts {
    fn of<'a>(rows: impl IntoIterator<Item = &'a InboxRow>) -> Self {
        let mut counts = Self::default();
        for row in rows {
            counts.total += 1;
            match row.status {
                InboxStatus::Pending => counts.pending += 1,
                InboxStatus::Done => counts.done += 1,
                InboxStatus::Failed => counts.failed += 1,
                InboxStatus::Dead => counts.dead += 1,
                InboxStatus::Skipped => counts.skipped += 1,
            }
        }
        counts
    }
}

/// An inbox row as the page lists it (the body left out).
fn row_summary(row: &InboxRow) -> Value {
    json!({
        "event_id": row.event_id,
        "session_id": row.session_id,
        "source": row.source,
        "at": row.at,
        "received_at": row.received_at,
        "status": row.status,
        "reason": row.reason,
        "attempts": row.attempts,
    })
}

/// One tenant's entry of the overview.
fn tenant_overview(
    tenant: &str,
    rows: &[InboxRow],
    live: Option<&VersionInfo>,
    shadow: Option<(&ShadowInfo, &ShadowReport)>,
    status_sync: bool,
) -> Value {
    let mut stuck: Vec<&InboxRow> = rows
        .iter()
        .filter(|r| matches!(r.status, InboxStatus::Failed | InboxStatus::Dead))
        .collect();
    // Newest first: the latest trouble is what an operator looks at.
    stuck.sort_by_key(|r| std::cmp::Reverse((r.at_ms, r.seq)));
    let listed: Vec<Value> = stuck
        .iter()
        .take(LISTED_PER_TENANT)
        .map(|r| row_summary(r))
        .collect();
    json!({
        "tenant": tenant,
        "events": StateCounts::of(rows),
        "module": live,
        "shadow": shadow.map(|(info, report)| json!({
            "digest": info.digest,
            "source": info.source,
            "since": info.since,
            "decided": report.decided,
            "matched": report.matched,
            "differed": report.differed,
            "errors": report.errors,
            "skipped": report.skipped,
        })),
        "status_sync": status_sync,
        "needs_attention": listed,
        "needs_attention_total": stuck.len(),
    })
}

/// `GET /admin/overview`.
#[utoipa::path(get, path = "/admin/overview", tag = "admin",
    security(("admin_token" = [])),
    responses((status = 200, description = "Every configured tenant: its events by state, live module, shadow and how the shadow's decisions compare, and its failed and dead-lettered events, newest first"),
        (status = 401, description = "Missing or wrong admin token"),
        (status = 404, description = "The admin API is off")))]
async fn overview(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = admin_only(&state, &headers) {
        return *r;
    }
    let mut ids = state.tenants.ids();
    ids.sort();
    let mut tenants = Vec::with_capacity(ids.len());
    for tenant in &ids {
        let rows = match state.store.events(tenant) {
            Ok(rows) => rows,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
        let live = state.registry.live(tenant);
        let shadow = state.registry.shadow(tenant);
        let report = match &shadow {
            // Counts only: the shadow route lists the differences.
            Some(s) => match state.store.shadow_report(tenant, &s.info.digest, 0) {
                Ok(report) => Some(report),
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            },
            None => None,
        };
        let status_sync = state
            .tenants
            .get(tenant)
            .is_some_and(|t| t.config.status_sync.is_some());
        tenants.push(tenant_overview(
            tenant,
            &rows,
            live.as_ref().map(|d| &d.info),
            shadow.as_ref().map(|s| &s.info).zip(report.as_ref()),
            status_sync,
        ));
    }
    Json(json!({
        "generated_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "tenants": tenants,
    }))
    .into_response()
}

/// What one event's timeline is made of.
struct TimelineParts<'a> {
    tenant: &'a str,
    row: &'a InboxRow,
    outcome: Option<&'a Outcome>,
    link: Option<&'a SessionLink>,
    /// The session's merged ledger, as stored (JSON), if the session has one.
    ledger: Option<Value>,
    /// The session's events, in its queue's order.
    transitions: &'a [InboxRow],
    /// The tenant's live module digest.
    live_digest: Option<&'a str>,
    /// The shadow module's digest and its verdict on this event.
    shadow: Option<(&'a str, Option<String>)>,
}

fn timeline_json(p: &TimelineParts<'_>) -> Value {
    let row = p.row;
    let decision = p.outcome.map(|o| {
        json!({
            "module_version": o.module_version,
            "module_digest": o.module_digest,
            // No digest: the built-in default rules decided (failure policy).
            "default_rules": o.module_digest.is_none() && o.plan.is_some(),
            "live_module": o.module_digest.is_some() && o.module_digest.as_deref() == p.live_digest,
            "state": o.state,
            "detail": o.detail,
            "plan": o.plan,
            "context": o.context,
            "decided_at": o.decided_at,
            "updated_at": o.updated_at,
        })
    });
    let session = p.ledger.as_ref().map(|ledger| {
        let transitions: Vec<Value> = p
            .transitions
            .iter()
            .map(|t| {
                let mut summary = row_summary(t);
                summary["this"] = Value::Bool(t.event_id == row.event_id);
                summary
            })
            .collect();
        json!({ "ledger": ledger, "transitions": transitions })
    });
    let mut event = row_summary(row);
    event["customer_key"] = json!(row.customer_key);
    event["body"] = row.body_json();
    json!({
        "tenant": p.tenant,
        "event": event,
        "decision": decision,
        "conversation": p.link.map(|l| json!({
            "conversation_id": l.conversation_id,
            "customer_id": l.customer_id,
        })),
        "session": session,
        "shadow": p.shadow.as_ref().map(|(digest, outcome)| json!({
            "digest": digest,
            "outcome": outcome,
        })),
    })
}

/// `GET /admin/tenants/{tenant}/events/{event_id}`.
#[utoipa::path(get, path = "/admin/tenants/{tenant}/events/{event_id}", tag = "admin",
    security(("admin_token" = [])),
    params(("tenant" = String, Path, description = "Tenant id from the configuration"),
        ("event_id" = String, Path, description = "The event's id, e.g. `chat-500000:created`")),
    responses((status = 200, description = "The event's timeline: its inbox row, recorded decision and outcome, Kustomer conversation, session ledger and transitions, and the shadow's verdict"),
        (status = 401, description = "Missing or wrong admin token"),
        (status = 404, description = "Unknown tenant or event, or the admin API is off")))]
async fn timeline(
    State(state): State<AppState>,
    Path((tenant, event_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = super::admin::authorise(&state, &headers, &tenant) {
        return *r;
    }
    let store = &state.store;
    let internal =
        |e: crate::store::StoreError| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let row = match store.event(&tenant, &event_id) {
        Ok(Some(row)) => row,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("tenant `{tenant}` has no event `{event_id}`"),
            )
        }
        Err(e) => return internal(e),
    };
    let outcome = match store.outcome(&tenant, &event_id) {
        Ok(o) => o,
        Err(e) => return internal(e),
    };
    let link = match store.session_link(&tenant, &row.session_id) {
        Ok(l) => l,
        Err(e) => return internal(e),
    };
    let ledger = match store.session_state(&tenant, &row.session_id) {
        // The ledger is stored as JSON text; unreadable, it is shown as text.
        Ok(state) => state.map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s))),
        Err(e) => return internal(e),
    };
    let transitions = if ledger.is_some() {
        match store.session_events(&tenant, &row.customer_key, &row.session_id) {
            Ok(rows) => rows,
            Err(e) => return internal(e),
        }
    } else {
        Vec::new()
    };
    let shadow = match state.registry.shadow(&tenant) {
        Some(s) => match store.shadow_outcome(&tenant, &s.info.digest, &event_id) {
            Ok(outcome) => Some((s.info.digest.clone(), outcome)),
            Err(e) => return internal(e),
        },
        None => None,
    };
    let live = state.registry.live(&tenant);
    Json(timeline_json(&TimelineParts {
        tenant: &tenant,
        row: &row,
        outcome: outcome.as_ref(),
        link: link.as_ref(),
        ledger,
        transitions: &transitions,
        live_digest: live.as_ref().map(|d| d.info.digest.as_str()),
        shadow: shadow.as_ref().map(|(d, o)| (d.as_str(), o.clone())),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OutcomeState;

    fn row(seq: i64, event_id: &str, status: InboxStatus, reason: Option<&str>) -> InboxRow {
        InboxRow {
            seq,
            tenant: "acme".into(),
            event_id: event_id.into(),
            source: "session-events".into(),
            session_id: "chat-1".into(),
            customer_key: "+12125550100".into(),
            at_ms: 1_000 * seq,
            at: format!("2026-01-15T09:00:0{seq}.000Z"),
            body: serde_json::value::to_raw_value(&json!({ "kind": "created" }))
                .expect("json")
                .into(),
            status,
            reason: reason.map(str::to_string),
            attempts: 1,
            received_at: "2026-01-15T09:00:10.000Z".into(),
        }
    }

    #[test]
    fn op10_the_overview_counts_each_state_and_lists_failed_and_dead_events_newest_first() {
        let rows = vec![
            row(1, "e1", InboxStatus::Done, None),
            row(2, "e2", InboxStatus::Failed, Some("422 from Kustomer")),
            row(3, "e3", InboxStatus::Dead, Some("503 from Kustomer")),
            row(4, "e4", InboxStatus::Pending, None),
            row(
                5,
                "e5",
                InboxStatus::Skipped,
                Some("skipped by an operator: "),
            ),
        ];
        let live = VersionInfo {
            version: 2,
            digest: "abc".into(),
            source: "admin-api".into(),
            deployed_at: "2026-01-15T08:00:00Z".into(),
        };
        let shadow = ShadowInfo {
            digest: "def".into(),
            source: "admin-api".into(),
            since: "2026-01-15T08:30:00Z".into(),
        };
        let report = ShadowReport {
            decided: 3,
            matched: 2,
            differed: 1,
            ..ShadowReport::default()
        };
        let v = tenant_overview("acme", &rows, Some(&live), Some((&shadow, &report)), true);
        assert_eq!(
            v["events"],
            json!({"pending": 1, "done": 1, "failed": 1, "dead": 1, "skipped": 1, "total": 5})
        );
        assert_eq!(v["module"]["version"], 2);
        assert_eq!(
            (&v["shadow"]["matched"], &v["shadow"]["differed"]),
            (&json!(2), &json!(1))
        );
        assert_eq!(v["status_sync"], true);
        let listed: Vec<&str> = v["needs_attention"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|e| e["event_id"].as_str().expect("an id"))
            .collect();
        assert_eq!(listed, ["e3", "e2"]);
        assert_eq!(v["needs_attention"][0]["status"], "dead");
        assert_eq!(v["needs_attention"][0]["reason"], "503 from Kustomer");
        assert!(
            v["needs_attention"][0].get("body").is_none(),
            "bodies stay out of the overview"
        );

        let bare = tenant_overview("beta", &[], None, None, false);
        assert_eq!(
            (&bare["module"], &bare["shadow"]),
            (&Value::Null, &Value::Null)
        );
        assert_eq!(bare["needs_attention_total"], 0);
    }

    #[test]
    fn op10_a_timeline_shows_the_row_the_decision_the_session_and_marks_the_event() {
        let failed = row(2, "e2", InboxStatus::Dead, Some("503 from Kustomer"));
        let transitions = vec![row(1, "e1", InboxStatus::Done, None), failed.clone()];
        let outcome = Outcome {
            tenant: "acme".into(),
            event_id: "e2".into(),
            module_digest: Some("abc".into()),
            module_version: Some(2),
            plan: Some(json!({ "actions": [] })),
            context: Some(json!({ "customer": null })),
            state: OutcomeState::Failed,
            detail: Some("503 from Kustomer".into()),
            decided_at: "2026-01-15T09:00:03.000Z".into(),
            updated_at: "2026-01-15T09:00:04.000Z".into(),
        };
        let link = SessionLink {
            session_id: "chat-1".into(),
            conversation_id: "conv-1".into(),
            customer_id: "cust-1".into(),
        };
        let v = timeline_json(&TimelineParts {
            tenant: "acme",
            row: &failed,
            outcome: Some(&outcome),
            link: Some(&link),
            ledger: Some(json!({ "updates": 2 })),
            transitions: &transitions,
            live_digest: Some("abc"),
            shadow: Some(("def", Some("same".into()))),
        });
        assert_eq!(v["event"]["status"], "dead");
        assert_eq!(v["event"]["attempts"], 1);
        assert_eq!(v["event"]["body"], json!({ "kind": "created" }));
        assert_eq!(v["decision"]["module_version"], 2);
        assert_eq!(v["decision"]["live_module"], true);
        assert_eq!(v["decision"]["default_rules"], false);
        assert_eq!(v["decision"]["state"], "failed");
        assert_eq!(v["decision"]["plan"], json!({ "actions": [] }));
        assert_eq!(v["conversation"]["conversation_id"], "conv-1");
        assert_eq!(v["session"]["ledger"]["updates"], 2);
        let marks: Vec<bool> = v["session"]["transitions"]
            .as_array()
            .expect("transitions")
            .iter()
            .map(|t| t["this"].as_bool().expect("a mark"))
            .collect();
        assert_eq!(marks, [false, true]);
        assert_eq!(v["shadow"]["outcome"], "same");

        let undecided = timeline_json(&TimelineParts {
            tenant: "acme",
            row: &failed,
            outcome: None,
            link: None,
            ledger: None,
            transitions: &[],
            live_digest: None,
            shadow: None,
        });
        for key in ["decision", "conversation", "session", "shadow"] {
            assert_eq!(undecided[key], Value::Null, "{key}");
        }
    }

    #[test]
    fn op10_the_page_and_its_assets_load_nothing_from_elsewhere() {
        for name in ["index.html", "app.js", "style.css"] {
            let (body, _) = embedded(name).expect("embedded");
            for remote in ["http://", "https://", "//cdn", "@import"] {
                assert!(!body.contains(remote), "{name} mentions {remote}");
            }
        }
        assert!(embedded("../admin.rs").is_none());
        assert!(INDEX_HTML.contains(r#"type="password""#));
        assert!(APP_JS.contains("sessionStorage"));
    }
}
