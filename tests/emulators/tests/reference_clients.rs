//! Clients written from the public API reference alone (the Kustomer REST
//! API and the CCAI Platform Manager API as documented), run against the
//! emulators. They use plain HTTP and JSON and follow only what the
//! reference states — envelopes, relative `links.next`, the search body,
//! `link` headers, documented field lists — so a mismatch here is the
//! emulator departing from the documentation, not from itself.
//!
//! The emulators' Rust handles are used only to start them and to seed data
//! a real tenant would already hold.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use switchboard_emulators::{ccai, kustomer};

// ------------------------------------------------------------ Kustomer

/// A Kustomer client per the reference: Bearer auth, `/v1` paths, the
/// `{"data":…}` envelope, relative links.
struct Kustomer {
    http: reqwest::Client,
    origin: String,
    token: String,
}

impl Kustomer {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.origin))
            .bearer_auth(&self.token)
            .header("accept", "application/json");
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.json().await.unwrap_or(Value::Null))
    }

    /// §3: follow `links.next` (relative) until it is null.
    async fn list_all(&self, first: &str) -> Vec<Value> {
        let mut path = first.to_string();
        let mut out = Vec::new();
        loop {
            let (status, _, page) = self.call(reqwest::Method::GET, &path, None).await;
            assert_eq!(status, 200, "GET {path}: {page}");
            check_list_envelope(&page);
            out.extend(page["data"].as_array().cloned().unwrap_or_default());
            match page["links"]["next"].as_str() {
                Some(next) => path = next.to_string(),
                None => return out,
            }
        }
    }

    /// §8: POST the search, then the same body to each `links.next`.
    async fn search_all(&self, body: &Value, page_size: u32) -> Vec<Value> {
        let mut path = format!("/v1/customers/search?page=1&pageSize={page_size}");
        let mut out = Vec::new();
        loop {
            let (status, _, page) = self.call(reqwest::Method::POST, &path, Some(body)).await;
            assert_eq!(status, 200, "POST {path}: {page}");
            check_list_envelope(&page);
            for key in ["pageSize", "page", "total", "totalPages"] {
                assert!(page["meta"].get(key).is_some(), "search meta lacks {key}");
            }
            for key in ["self", "first", "prev", "next", "last"] {
                assert!(page["links"].get(key).is_some(), "search links lack {key}");
            }
            out.extend(page["data"].as_array().cloned().unwrap_or_default());
            match page["links"]["next"].as_str() {
                Some(next) => path = next.to_string(),
                None => return out,
            }
        }
    }
}

fn is_object_id(s: &str) -> bool {
    s.len() == 24
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// §2, §3: every list item is a resource object; links are relative.
fn check_list_envelope(page: &Value) {
    assert!(
        page["meta"]["pageSize"].is_number(),
        "meta: {}",
        page["meta"]
    );
    assert!(page["meta"]["page"].is_number());
    for key in ["self", "first"] {
        let link = page["links"][key].as_str().unwrap_or_default();
        assert!(link.starts_with("/v1/"), "links.{key} is relative: {link}");
    }
    for item in page["data"].as_array().expect("data is a list") {
        assert!(item["type"].is_string(), "{item}");
        assert!(
            is_object_id(item["id"].as_str().unwrap_or_default()),
            "{item}"
        );
        assert!(item["attributes"].is_object());
        let link = item["links"]["self"].as_str().unwrap_or_default();
        assert!(link.starts_with("/v1/"), "self link is relative: {link}");
    }
}

/// §4: an error body is `{"errors":[…]}` with a status/code and a
/// human-readable title or message.
fn check_error(status: u16, body: &Value) {
    let first = &body["errors"][0];
    assert!(first.is_object(), "{status}: {body}");
    assert!(
        first["code"].is_string() || first["status"].is_number(),
        "{body}"
    );
    assert!(
        first["title"].is_string() || first["message"].is_string(),
        "{body}"
    );
}

async fn kustomer() -> (kustomer::KustomerEmulator, Kustomer) {
    let emu = kustomer::start(kustomer::KustomerEmulatorConfig::default())
        .await
        .expect("emulator");
    let client = Kustomer {
        http: reqwest::Client::new(),
        origin: emu.base_url(),
        token: emu.api_key(),
    };
    (emu, client)
}

/// A customer per §7 (name, emails, phones).
async fn create_customer(k: &Kustomer, n: usize) -> String {
    let (status, _, body) = k
        .call(
            reqwest::Method::POST,
            "/v1/customers",
            Some(&json!({
                "name": format!("Export Customer {n}"),
                "emails": [{"type": "home", "email": format!("export{n}@example.com")}],
                "phones": [{"type": "mobile", "phone": format!("+1415555{n:04}")}],
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["data"]["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn reference_search_export_reads_each_change_once_across_runs() {
    let (emu, k) = kustomer().await;
    let mut ids = BTreeSet::new();
    for n in 0..23 {
        ids.insert(create_customer(&k, n).await);
        emu.advance(std::time::Duration::from_millis(500));
    }
    // §8 large sets: filter `*_updated_at gte <last>`, sort asc, de-duplicate.
    let export = |since: &str| {
        json!({
            "queryContext": "customer",
            "and": [{"customer_updated_at": {"gte": since}}],
            "or": [],
            "not": [],
            "sort": [{"customer_updated_at": "asc"}],
            "timeZone": "America/New_York",
            "includeDeleted": false,
            "fields": [],
            "aggs": {},
        })
    };
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut bookmark = "2000-01-01T00:00:00.000Z".to_string();
    let mut run = |records: Vec<Value>, seen: &mut BTreeMap<String, String>| {
        let mut fresh = Vec::new();
        for r in records {
            let id = r["id"].as_str().unwrap_or_default().to_string();
            let updated = r["attributes"]["updatedAt"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(
                updated >= bookmark,
                "{updated} before the bookmark {bookmark}"
            );
            if seen.get(&id) != Some(&updated) {
                fresh.push(id.clone());
                seen.insert(id, updated.clone());
            }
            bookmark = bookmark.clone().max(updated);
        }
        fresh
    };
    let first = k.search_all(&export("2000-01-01"), 10).await;
    let fresh = run(first, &mut seen);
    assert_eq!(fresh.len(), 23, "three pages of ten, every customer once");
    assert_eq!(fresh.iter().cloned().collect::<BTreeSet<_>>(), ids);

    emu.advance(std::time::Duration::from_secs(5));
    let changed: Vec<String> = ids.iter().take(4).cloned().collect();
    for id in &changed {
        let (status, _, body) = k
            .call(
                reqwest::Method::PATCH,
                &format!("/v1/customers/{id}"),
                Some(&json!({"locale": "en_GB"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let since = seen.values().max().cloned().unwrap_or_default();
    let second = k.search_all(&export(&since), 3).await;
    let fresh = run(second, &mut seen);
    assert_eq!(
        fresh.into_iter().collect::<BTreeSet<_>>(),
        changed.into_iter().collect::<BTreeSet<_>>(),
        "the second run yields only the updated customers"
    );
}

#[tokio::test]
async fn reference_list_clients_walk_users_teams_tags_shortcuts_and_statuses() {
    let (_emu, k) = kustomer().await;
    for path in [
        "/v1/users?pageSize=1",
        "/v1/teams?pageSize=1",
        "/v1/tags?pageSize=1",
        "/v1/shortcuts?pageSize=1",
        "/v1/routing/statuses?pageSize=2",
    ] {
        let items = k.list_all(path).await;
        assert!(items.len() >= 2, "{path}: several pages of one");
        let unique: BTreeSet<&str> = items.iter().filter_map(|i| i["id"].as_str()).collect();
        assert_eq!(unique.len(), items.len(), "{path}: no record twice");
    }
    // §13 attribute lists.
    for team in k.list_all("/v1/teams").await {
        assert_eq!(team["type"], "team");
        for key in [
            "name",
            "displayName",
            "icon",
            "members",
            "externalId",
            "createdAt",
            "updatedAt",
            "modifiedAt",
        ] {
            assert!(team["attributes"].get(key).is_some(), "team lacks {key}");
        }
    }
    for user in k.list_all("/v1/users").await {
        for key in [
            "displayName",
            "name",
            "userType",
            "email",
            "roles",
            "createdAt",
            "updatedAt",
        ] {
            assert!(user["attributes"].get(key).is_some(), "user lacks {key}");
        }
    }
    // §1: the key's own user.
    let (status, _, me) = k
        .call(reqwest::Method::GET, "/v1/users/current", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(me["data"]["type"], "user");
    assert_eq!(me["data"]["attributes"]["userType"], "machine");
    let (status, _, token) = k
        .call(reqwest::Method::GET, "/v1/auth/tokens/current", None)
        .await;
    assert_eq!(status, 200);
    for key in ["lastTokenChars", "roles", "createdAt"] {
        assert!(
            token["data"]["attributes"].get(key).is_some(),
            "token lacks {key}"
        );
    }
}

#[tokio::test]
async fn reference_error_handling_sees_errors_arrays_and_rate_headers() {
    let (_emu, k) = kustomer().await;
    // §5: rate headers on a normal response, as strings of integers.
    let (status, headers, _) = k.call(reqwest::Method::GET, "/v1/tags", None).await;
    assert_eq!(status, 200);
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        let v = headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(v.parse::<i64>().is_ok(), "{h}: {v:?}");
    }
    let big = json!({"name": "x".repeat(110 * 1024)});
    let cases: Vec<(reqwest::Method, String, Option<Value>, u16)> = vec![
        (
            reqwest::Method::GET,
            "/v1/customers/0123456789abcdef01234567".into(),
            None,
            404,
        ),
        (
            reqwest::Method::POST,
            "/v1/conversations".into(),
            Some(json!({})),
            400,
        ),
        (
            reqwest::Method::POST,
            "/v1/customers".into(),
            Some(big),
            413,
        ),
        (
            reqwest::Method::GET,
            "/v1/companies-of-the-future".into(),
            None,
            404,
        ),
        (
            reqwest::Method::PATCH,
            "/v1/teams".into(),
            Some(json!({})),
            405,
        ),
        (
            reqwest::Method::POST,
            "/v1/customers/search".into(),
            Some(json!({"and": [{"nonsense": 1}]})),
            400,
        ),
    ];
    for (method, path, body, expected) in cases {
        let (status, headers, err) = k.call(method.clone(), &path, body.as_ref()).await;
        assert_eq!(status, expected, "{method} {path}: {err}");
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(ct.starts_with("application/json"), "{method} {path}: {ct}");
        check_error(status, &err);
    }
    let resp = k
        .http
        .get(format!("{}/v1/tags", k.origin))
        .bearer_auth("not-the-key")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 401);
    check_error(401, &resp.json().await.expect("json"));
}

#[tokio::test]
async fn reference_kobjects_of_a_customer_are_listed_searched_and_rate_limited() {
    let (_emu, k) = kustomer().await;
    let who = create_customer(&k, 1).await;
    // §6: `GET, POST /customers/{id}/klasses/{name}`.
    let path = format!("/v1/customers/{who}/klasses/subscription");
    let (status, _, made) = k
        .call(
            reqwest::Method::POST,
            &path,
            Some(&json!({"title": "Gold plan", "custom": {"seatsNum": 12}})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let id = made["data"]["id"].as_str().expect("id").to_string();
    assert!(is_object_id(&id));
    let items = k.list_all(&path).await;
    assert_eq!(items.len(), 1);
    let (status, _, one) = k
        .call(
            reqwest::Method::GET,
            &format!("/v1/klasses/subscription/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(one["data"]["id"], id.as_str());
    // §8: KObject custom fields are `kobject_custom_<klass>_<attr>`.
    let found = k
        .search_all(
            &json!({"queryContext": "customer",
                    "and": [{"kobject_custom_subscription_seatsNum": {"gte": 10}}]}),
            10,
        )
        .await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], who.as_str());
    // §5: 120 conversation/message/KObject creates per customer per minute.
    let mut refused = None;
    for n in 0..130 {
        let (status, headers, body) = k
            .call(
                reqwest::Method::POST,
                &path,
                Some(&json!({"title": format!("Seat {n}")})),
            )
            .await;
        if status == 429 {
            check_error(status, &body);
            assert!(headers.contains_key("x-ratelimit-reset"));
            refused = Some(n);
            break;
        }
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(
        refused,
        Some(119),
        "the 121st create in the minute is refused"
    );
}

#[tokio::test]
async fn reference_sorted_lists_order_by_id_when_the_emulator_follows_the_docs() {
    let emu = kustomer::start(kustomer::KustomerEmulatorConfig {
        sort_lists_by_id: true,
        ..Default::default()
    })
    .await
    .expect("emulator");
    let k = Kustomer {
        http: reqwest::Client::new(),
        origin: emu.base_url(),
        token: emu.api_key(),
    };
    let who = create_customer(&k, 7).await;
    for id in [
        "5f0000000000000000000003",
        "5f0000000000000000000001",
        "5f0000000000000000000002",
    ] {
        let (status, _, body) = k
            .call(
                reqwest::Method::POST,
                "/v1/conversations",
                Some(&json!({"customer": who, "id": id})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // §3: `GET /v1/conversations?sort=desc` sorts by id.
    let items = k.list_all("/v1/conversations?sort=desc&pageSize=2").await;
    let ids: Vec<&str> = items.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(
        ids,
        [
            "5f0000000000000000000003",
            "5f0000000000000000000002",
            "5f0000000000000000000001"
        ]
    );
}

// ---------------------------------------------------------------- CCAI

/// A Manager API reader per §1.2–§1.5: Basic auth, `page`/`per`, `total`,
/// `per-page`, and a `link: <https…>; rel="next"` it follows only when the
/// link is https, as clients written against the hosted service do.
struct Manager {
    http: reqwest::Client,
    user: String,
    pass: String,
}

impl Manager {
    /// A non-paginated endpoint (the trees): one JSON body.
    async fn get(&self, url: &str) -> Value {
        let resp = self
            .http
            .get(url)
            .basic_auth(&self.user, Some(&self.pass))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 200, "GET {url}");
        resp.json().await.expect("json")
    }

    async fn read(&self, url: &str) -> (Vec<Value>, usize) {
        let mut url = url.to_string();
        let mut out = Vec::new();
        let mut pages = 0;
        loop {
            let resp = self
                .http
                .get(&url)
                .basic_auth(&self.user, Some(&self.pass))
                .header("accept", "application/vnd.json")
                .send()
                .await
                .expect("request");
            assert_eq!(resp.status().as_u16(), 200, "GET {url}");
            let h = resp.headers().clone();
            let total: usize = h
                .get("total")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .expect("total header");
            let per: usize = h
                .get("per-page")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .expect("per-page header");
            assert!(per <= 100 && total >= out.len());
            let body: Value = resp.json().await.expect("json array");
            out.extend(body.as_array().cloned().unwrap_or_default());
            pages += 1;
            let next = h.get("link").and_then(|v| v.to_str().ok()).and_then(|l| {
                let (target, rel) = l.split_once(';')?;
                rel.contains("next").then(|| {
                    target
                        .trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string()
                })
            });
            match next {
                Some(n) if n.starts_with("https://") => url = n,
                _ => return (out, pages),
            }
        }
    }
}

async fn tls_ccai() -> (ccai::CcaiEmulator, Manager) {
    let emu = ccai::start(ccai::CcaiConfig {
        tls: true,
        rate_limit: None,
        ..Default::default()
    })
    .await
    .expect("emulator");
    let pem = emu.certificate_pem().expect("a certificate");
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("pem"))
        .build()
        .expect("client");
    let creds = emu.credentials();
    let m = Manager {
        http,
        user: creds.subdomain,
        pass: creds.api_token,
    };
    (emu, m)
}

#[tokio::test]
async fn reference_manager_reader_pages_agents_by_status_updated_at_over_https() {
    let (emu, m) = tls_ccai().await;
    for n in 0..120u64 {
        emu.add_agent(ccai::Agent::new(
            500 + n,
            &format!("ref{n}@example.com"),
            "Ref",
            "Agent",
        ));
    }
    // §1.5: agents by `status_updated_at[from]`, 100 a page.
    let url = format!(
        "{}/manager/api/v1/agents?page=1&per=100&sort_column=status_updated_at&sort_direction=ASC&status_updated_at[from]=2020-01-01T00:00:00.000Z",
        emu.base_url()
    );
    let (agents, pages) = m.read(&url).await;
    assert_eq!(pages, 2, "128 agents need two pages");
    assert_eq!(agents.len(), emu.agents().len());
    // §1.4 agent fields.
    for a in &agents {
        for key in [
            "id",
            "email",
            "created_at",
            "last_login_time",
            "first_name",
            "middle_name",
            "last_name",
            "avatar_url",
            "agent_number",
            "status",
            "status_updated_at",
            "crm_authenticated",
            "online",
            "wrap_up",
            "call_count",
            "chat_count",
            "location",
            "roles",
            "teams",
            "channels",
        ] {
            assert!(a.get(key).is_some(), "agent lacks {key}");
        }
        assert!(
            a["status_updated_at"].as_str().is_some_and(|s| s >= "2020"),
            "{a}"
        );
    }
}

#[tokio::test]
async fn reference_manager_reader_lists_menus_teams_and_their_trees() {
    let (emu, m) = tls_ccai().await;
    let base = format!("{}/manager/api/v1", emu.base_url());
    let (menus, _) = m.read(&format!("{base}/menus")).await;
    assert!(!menus.is_empty());
    for menu in &menus {
        assert!(menu["id"].is_u64() && menu["name"].is_string(), "{menu}");
        let kind = menu["menu_type"].as_str().unwrap_or_default();
        assert!(
            ["ivr_menu", "mobile_menu", "web_menu"].contains(&kind),
            "{kind}"
        );
    }
    let (teams, _) = m.read(&format!("{base}/teams")).await;
    for team in &teams {
        // §1.4: teams carry `name` and `assignees[{id,name}]`.
        assert!(team["name"].is_string());
        for a in team["assignees"].as_array().expect("assignees") {
            assert!(a["id"].is_u64() && a["name"].is_string(), "{a}");
        }
    }
    for tree in ["menus/tree", "teams/tree"] {
        let nodes = m.get(&format!("{base}/{tree}")).await;
        let nodes = nodes.as_array().expect("a list of root nodes");
        assert!(!nodes.is_empty(), "{tree}");
        assert!(
            nodes.iter().all(|n| n["parent_id"].is_null()),
            "{tree}: roots"
        );
    }
}

#[tokio::test]
async fn reference_manager_reader_sees_the_documented_chat_fields() {
    let (emu, m) = tls_ccai().await;
    for scenario in ccai::scenarios() {
        emu.publish(&scenario);
    }
    let url = format!(
        "{}/manager/api/v1/chats?page=1&per=100&sort_column=updated_at&sort_direction=ASC&updated_at[from]=2020-01-01T00:00:00.000Z",
        emu.base_url()
    );
    let (chats, _) = m.read(&url).await;
    assert!(!chats.is_empty(), "the scenarios publish chats");
    // §2.3 Manager chat object.
    for chat in &chats {
        for key in [
            "id",
            "lang",
            "chat_type",
            "status",
            "sub_status",
            "created_at",
            "assigned_at",
            "ends_at",
            "updated_at",
            "first_msg_sent_at",
            "last_msg_sent_at",
            "wait_duration",
            "queue_duration",
            "chat_duration",
            "verified",
            "rating",
            "has_feedback",
            "out_ticket_id",
            "out_ticket_url",
            "finish_reason",
            "fail_reason",
            "message_count",
            "average_response_time",
            "longest_response_time",
            "selected_menu",
            "menu_path",
            "agent_info",
        ] {
            assert!(chat.get(key).is_some(), "chat {} lacks {key}", chat["id"]);
        }
        assert!(chat["first_msg_sent_at"].is_string(), "{}", chat["id"]);
        assert!(chat["average_response_time"].is_number());
    }
}
