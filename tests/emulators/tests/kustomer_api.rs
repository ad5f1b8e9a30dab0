//! The Kustomer emulator's endpoints against the samples and the reference:
//! search (criteria, paging, incremental reads, limits), teams, tags,
//! shortcuts, the current user, error bodies, list ordering and the bounded
//! request log.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use switchboard_emulators::kustomer::{self, KustomerEmulator, KustomerEmulatorConfig};

fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0)
        .single()
        .expect("valid start time")
}

async fn emulator(config: KustomerEmulatorConfig) -> KustomerEmulator {
    kustomer::start(KustomerEmulatorConfig {
        fixed_time: Some(start_time()),
        ..config
    })
    .await
    .expect("emulator starts")
}

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    fn of(emu: &KustomerEmulator) -> Self {
        Api {
            http: reqwest::Client::new(),
            base: emu.base_url(),
            key: emu.api_key(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req.bearer_auth(&self.key).send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.patch(format!("{}{path}", self.base)).json(&body))
            .await
    }

    async fn customer(&self, name: &str, email: &str) -> String {
        let (status, body) = self
            .post(
                "/v1/customers",
                json!({"name": name, "emails": [{"type": "work", "email": email}]}),
            )
            .await;
        assert_eq!(status, 201, "customer create: {body}");
        body["data"]["id"]
            .as_str()
            .expect("customer id")
            .to_string()
    }

    /// POSTs a search and follows `links.next` to the end; returns the ids
    /// in order and the first page's body.
    async fn search_all(&self, query: &Value, page_size: usize) -> (Vec<String>, Value) {
        let mut path = format!("/v1/customers/search?pageSize={page_size}");
        let mut ids = Vec::new();
        let mut first = Value::Null;
        loop {
            let (status, body) = self.post(&path, query.clone()).await;
            assert_eq!(status, 200, "search {path}: {body}");
            ids.extend(
                body["data"]
                    .as_array()
                    .expect("data list")
                    .iter()
                    .map(|d| d["id"].as_str().unwrap_or_default().to_string()),
            );
            if first.is_null() {
                first = body.clone();
            }
            match body["links"]["next"].as_str() {
                Some(next) => path = next.to_string(),
                None => return (ids, first),
            }
        }
    }
}

fn sample(path: &str) -> Value {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/samples")
        .join(path);
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", file.display()))
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn missing(expected: &Value, actual: &Value) -> Vec<String> {
    keys(expected).difference(&keys(actual)).cloned().collect()
}

#[tokio::test]
async fn search_pages_through_customers_updated_since_a_time() {
    let emu = emulator(KustomerEmulatorConfig::default()).await;
    let api = Api::of(&emu);
    let mut made = Vec::new();
    for n in 0..25 {
        made.push(
            api.customer(&format!("Page Person {n}"), &format!("p{n}@example.com"))
                .await,
        );
        emu.advance(Duration::from_secs(60));
    }
    let since = "2026-03-02T12:05:00.000Z";
    let query = json!({
        "queryContext": "customer",
        "and": [{"customer_updated_at": {"gte": since}}],
        "sort": [{"customer_updated_at": "asc"}],
        "timeZone": "UTC",
    });
    let (ids, first) = api.search_all(&query, 7).await;
    assert_eq!(
        ids,
        made[5..].to_vec(),
        "customers updated at or after {since}, oldest first"
    );
    assert_eq!(first["meta"]["total"], 20, "meta: {}", first["meta"]);
    assert_eq!(first["meta"]["totalPages"], 3);
    assert_eq!(first["meta"]["pageSize"], 7);
    assert!(first["meta"]["aggregations"].is_object());
    assert_eq!(
        first["links"]["last"], "/v1/customers/search?page=3&pageSize=7",
        "links: {}",
        first["links"]
    );
    assert!(first["links"]["prev"].is_null());

    // The documented incremental pattern: filter `gte` the last seen
    // timestamp, sort ascending, drop what was already seen.
    let bookmark = "2026-03-02T12:24:00.000Z";
    for id in &made[..3] {
        let (status, _) = api
            .patch(&format!("/v1/customers/{id}"), json!({"locale": "fr"}))
            .await;
        assert_eq!(status, 200);
    }
    let again = json!({
        "and": [{"customer_updated_at": {"gte": bookmark}}],
        "sort": [{"customer_updated_at": "asc"}],
    });
    let (ids, _) = api.search_all(&again, 2).await;
    assert_eq!(
        ids.len(),
        4,
        "the bookmark's own record plus three updates: {ids:?}"
    );
    assert_eq!(ids[0], made[24]);
    assert_eq!(ids[1..].to_vec(), made[..3].to_vec());
}

#[tokio::test]
async fn search_matches_related_objects_in_every_context() {
    let emu = emulator(KustomerEmulatorConfig::default()).await;
    let api = Api::of(&emu);
    let ann = api.customer("Ann Done", "ann@example.com").await;
    emu.advance(Duration::from_secs(1));
    let bob = api.customer("Bob Open", "bob@example.com").await;
    let (_, conv) = api
        .post(
            &format!("/v1/customers/{ann}/conversations"),
            json!({"status": "done", "custom": {"callIdStr": "c-1"}}),
        )
        .await;
    let ann_conv = conv["data"]["id"]
        .as_str()
        .expect("conversation")
        .to_string();
    let (_, conv) = api
        .post(&format!("/v1/customers/{bob}/conversations"), json!({}))
        .await;
    let bob_conv = conv["data"]["id"]
        .as_str()
        .expect("conversation")
        .to_string();
    let (status, msg) = api
        .post(
            "/v1/messages",
            json!({"conversation": bob_conv, "channel": "voice", "app": "switchboard",
                   "direction": "in", "preview": "hello"}),
        )
        .await;
    assert_eq!(status, 201, "{msg}");
    let (status, _) = api
        .post(
            &format!("/v1/conversations/{ann_conv}/notes"),
            json!({"body": "called back"}),
        )
        .await;
    assert_eq!(status, 201);

    let ids = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|d| d["id"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let search = |q: Value| {
        let api = &api;
        async move {
            let (status, body) = api.post("/v1/customers/search", q).await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };

    let body = search(json!({"and": [{"conversation_status": {"equals": "done"}}]})).await;
    assert_eq!(
        ids(&body),
        vec![ann.clone()],
        "customers with a done conversation"
    );
    assert_eq!(body["data"][0]["type"], "customer");

    let body = search(json!({"queryContext": "conversation",
        "and": [{"customer_email": {"equals": "BOB@example.com"}}]}))
    .await;
    assert_eq!(ids(&body), vec![bob_conv.clone()], "conversations of bob");
    assert_eq!(body["data"][0]["type"], "conversation");

    let body = search(json!({"queryContext": "message",
        "and": [{"message_channel": {"equals": "voice"}}, {"customer_id": {"equals": bob}}]}))
    .await;
    assert_eq!(body["meta"]["total"], 1, "{body}");
    assert_eq!(body["data"][0]["type"], "message");

    let body = search(json!({"queryContext": "note",
        "and": [{"note_body": {"equals": "called back"}}]}))
    .await;
    assert_eq!(body["data"][0]["type"], "note");
    assert_eq!(body["meta"]["total"], 1);

    let body = search(json!({"queryContext": "conversation",
        "and": [{"conversation_custom_callIdStr": {"equals": "c-1"}}]}))
    .await;
    assert_eq!(
        ids(&body),
        vec![ann_conv.clone()],
        "custom attribute criterion"
    );

    let body = search(json!({"or": [
        {"customer_email": {"equals": "ann@example.com"}},
        {"customer_email": {"equals": "bob@example.com"}}],
        "not": [{"conversation_status": {"equals": "done"}}]}))
    .await;
    assert_eq!(ids(&body), vec![bob.clone()], "or minus not");

    let body = search(json!({"and": [{"or": [
        {"customer_name": {"equals": "Ann Done"}},
        {"message_preview": {"equals": "hello"}}]}],
        "sort": [{"customer_created_at": "desc"}]}))
    .await;
    assert_eq!(ids(&body), vec![bob, ann], "nested or, newest first");

    let body = search(json!({"queryContext": "kobject",
        "and": [{"kobject_custom_order_totalNum": {"gte": 1}}]}))
    .await;
    assert_eq!(body["meta"]["total"], 0, "no KObjects yet");
}

#[tokio::test]
async fn kobjects_are_stored_listed_and_searchable() {
    let emu = emulator(KustomerEmulatorConfig::default()).await;
    let api = Api::of(&emu);
    let ann = api.customer("Ann Orders", "orders@example.com").await;
    let bob = api.customer("Bob Orders", "bob-orders@example.com").await;
    let mut made = Vec::new();
    for (who, total) in [(&ann, 250), (&ann, 20), (&bob, 40)] {
        let (status, body) = api
            .post(
                &format!("/v1/customers/{who}/klasses/order"),
                json!({"title": format!("Order {total}"), "externalId": format!("o-{total}"),
                       "custom": {"totalNum": total}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["data"]["type"], "kobject");
        assert_eq!(
            body["data"]["relationships"]["klass"]["data"]["id"],
            "order"
        );
        made.push(body["data"]["id"].as_str().expect("id").to_string());
    }
    let (status, other) = api
        .post(
            "/v1/klasses/refund",
            json!({"customer": bob, "custom": {"totalNum": 999}}),
        )
        .await;
    assert_eq!(status, 201, "{other}");

    let (_, list) = api.get(&format!("/v1/customers/{ann}/klasses/order")).await;
    assert_eq!(list["meta"]["total"], 2);
    let (_, list) = api.get("/v1/klasses/order?pageSize=2").await;
    assert_eq!(list["meta"]["totalPages"], 2);
    let (status, one) = api.get(&format!("/v1/klasses/order/{}", made[2])).await;
    assert_eq!(status, 200);
    assert_eq!(
        one["data"]["links"]["self"],
        format!("/v1/klasses/order/{}", made[2])
    );
    let (status, _) = api.get(&format!("/v1/klasses/refund/{}", made[2])).await;
    assert_eq!(status, 404, "a KObject is read through its own klass");

    let (_, found) = api
        .post(
            "/v1/customers/search",
            json!({"and": [{"kobject_custom_order_totalNum": {"gte": 100}}]}),
        )
        .await;
    assert_eq!(found["meta"]["total"], 1, "{found}");
    assert_eq!(found["data"][0]["id"], ann.as_str());
    let (_, found) = api
        .post(
            "/v1/customers/search",
            json!({"queryContext": "kobject",
                   "and": [{"customer_email": {"equals": "bob-orders@example.com"}},
                           {"kobject_custom_order_totalNum": {"lte": 1000}}]}),
        )
        .await;
    assert_eq!(
        found["meta"]["total"], 1,
        "the refund is another klass: {found}"
    );
    assert_eq!(found["data"][0]["id"], made[2].as_str());
}

#[tokio::test]
async fn search_reads_date_only_values_in_the_query_time_zone() {
    let emu = emulator(KustomerEmulatorConfig::default()).await;
    let api = Api::of(&emu);
    // 2026-03-02T12:00Z and 2026-03-03T03:00Z: the second is still 2 March
    // in New York (UTC-05:00).
    let early = api.customer("Early", "early@example.com").await;
    emu.advance(Duration::from_secs(15 * 3600));
    let late = api.customer("Late", "late@example.com").await;
    let on_day = |tz: &str| {
        json!({"and": [{"customer_created_at": {"equals": "2026-03-02"}}], "timeZone": tz,
               "sort": [{"customer_created_at": "asc"}]})
    };
    let (ids, _) = api.search_all(&on_day("GMT"), 10).await;
    assert_eq!(ids, vec![early.clone()]);
    let (ids, _) = api.search_all(&on_day("-05:00"), 10).await;
    assert_eq!(ids, vec![early, late]);
}

#[tokio::test]
async fn search_refuses_bad_queries_deep_pages_and_too_many_searches() {
    let emu = emulator(KustomerEmulatorConfig {
        search_per_minute: 4,
        ..Default::default()
    })
    .await;
    let api = Api::of(&emu);
    for (path, body, pointer) in [
        (
            "/v1/customers/search",
            json!({"and": [{"customer_name": {"like": "x"}}]}),
            "/and/0/customer_name/like",
        ),
        (
            "/v1/customers/search",
            json!({"queryContext": "company"}),
            "/queryContext",
        ),
        ("/v1/customers/search?page=101", json!({}), "page"),
    ] {
        let (status, err) = api.post(path, body).await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["errors"][0]["status"], 400);
        assert_eq!(err["errors"][0]["code"], "bad_request");
        assert_eq!(err["errors"][0]["source"]["pointer"], pointer, "{err}");
    }
    let (status, _) = api.post("/v1/customers/search", json!({})).await;
    assert_eq!(status, 200, "the fourth search fits the budget");
    let resp = api
        .http
        .post(format!("{}/v1/customers/search", api.base))
        .bearer_auth(&api.key)
        .json(&json!({}))
        .send()
        .await
        .expect("search");
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["errors"][0]["code"], "rate_limit_exceeded");
}

#[tokio::test]
async fn teams_tags_shortcuts_and_the_current_user_have_the_documented_shapes() {
    let emu = emulator(KustomerEmulatorConfig::default()).await;
    let api = Api::of(&emu);
    let (status, teams) = api.get("/v1/teams?pageSize=500").await;
    assert_eq!(status, 200, "{teams}");
    assert_eq!(teams["meta"]["pageSize"], 500, "teams take pages of 500");
    let team = &teams["data"][0];
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
        assert!(
            team["attributes"].get(key).is_some(),
            "team lacks {key}: {team}"
        );
    }
    assert!(!team["attributes"]["members"]
        .as_array()
        .expect("members")
        .is_empty());
    let id = team["id"].as_str().expect("team id");
    let (status, one) = api.get(&format!("/v1/teams/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["data"]["links"]["self"], format!("/v1/teams/{id}"));

    let member = team["attributes"]["members"][0].as_str().expect("a member");
    let (status, theirs) = api.get(&format!("/v1/users/{member}/teams")).await;
    assert_eq!(status, 200, "{theirs}");
    assert!(theirs["data"]
        .as_array()
        .expect("teams")
        .iter()
        .any(|t| t["id"] == team["id"]));

    let (status, tags) = api.get("/v1/tags").await;
    assert_eq!(status, 200);
    assert_eq!(tags["data"][0]["type"], "tag");
    for key in ["name", "color", "deleted", "createdAt", "updatedAt"] {
        assert!(
            tags["data"][0]["attributes"].get(key).is_some(),
            "tag lacks {key}"
        );
    }

    let (status, shortcuts) = api.get("/v1/shortcuts").await;
    assert_eq!(status, 200);
    let s = &shortcuts["data"][0];
    assert_eq!(s["type"], "shortcut");
    assert!(s["attributes"]["draft"]["text"].is_string(), "{s}");
    assert!(s["relationships"]["createdBy"]["data"]["id"].is_string());

    let (status, me) = api.get("/v1/users/current").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["data"]["type"], "user");
    assert_eq!(
        me["data"]["attributes"]["userType"], "machine",
        "the API key's user"
    );
    let (status, token) = api.get("/v1/auth/tokens/current").await;
    assert_eq!(status, 200);
    assert_eq!(
        token["data"]["relationships"]["user"]["data"]["id"],
        me["data"]["id"]
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_kustomer_error_bodies() {
    let emu = emulator(KustomerEmulatorConfig::default()).await;
    let api = Api::of(&emu);
    for (method, path, status) in [
        (reqwest::Method::GET, "/v1/no-such-thing", 404),
        (reqwest::Method::DELETE, "/v1/customers", 405),
        (reqwest::Method::GET, "/v1/customers/search", 405),
        (reqwest::Method::GET, "/not-an-api-path", 404),
    ] {
        let resp = api
            .http
            .request(method.clone(), format!("{}{path}", api.base))
            .bearer_auth(&api.key)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), status, "{method} {path}");
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(ct.starts_with("application/json"), "{method} {path}: {ct}");
        let body: Value = resp.json().await.expect("json body");
        assert_eq!(body["errors"][0]["status"], status, "{body}");
        assert!(body["errors"][0]["title"].is_string());
    }
    let resp = api
        .http
        .get(format!("{}/v1/no-such-thing", api.base))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 401, "auth comes before routing");
}

#[tokio::test]
async fn lists_order_by_creation_unless_id_sorting_is_switched_on() {
    for by_id in [false, true] {
        let emu = emulator(KustomerEmulatorConfig {
            sort_lists_by_id: by_id,
            ..Default::default()
        })
        .await;
        let api = Api::of(&emu);
        let who = api.customer("Sorted", "sorted@example.com").await;
        // Caller-supplied ids: the newer conversation has the lower id.
        for id in ["ffffffffffffffffffffff01", "00000000000000000000aa02"] {
            let (status, body) = api
                .post(
                    &format!("/v1/customers/{who}/conversations"),
                    json!({"id": id}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            emu.advance(Duration::from_secs(1));
        }
        let (_, desc) = api
            .get(&format!("/v1/customers/{who}/conversations?sort=desc"))
            .await;
        let first = desc["data"][0]["id"].as_str().unwrap_or_default();
        if by_id {
            assert_eq!(first, "ffffffffffffffffffffff01", "highest id first");
        } else {
            assert_eq!(first, "00000000000000000000aa02", "newest first");
        }
        let (_, asc) = api.get("/v1/conversations?sort=asc").await;
        let first = asc["data"][0]["id"].as_str().unwrap_or_default();
        let expected = if by_id {
            "00000000000000000000aa02"
        } else {
            "ffffffffffffffffffffff01"
        };
        assert_eq!(first, expected, "sort_lists_by_id={by_id}");
        assert_eq!(
            asc["links"]["self"], "/v1/conversations?sort=asc&page=1&pageSize=100",
            "the sort stays in the links"
        );
    }
}

#[tokio::test]
async fn emulator_ids_sort_in_creation_order_like_object_ids() {
    let emu = emulator(KustomerEmulatorConfig::default()).await;
    let api = Api::of(&emu);
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(
            api.customer(&format!("Id {n}"), &format!("id{n}@example.com"))
                .await,
        );
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    assert!(ids.iter().all(|id| id.len() == 24));
}

#[tokio::test]
async fn conversation_and_customer_reads_carry_the_sample_attributes() {
    let emu = emulator(KustomerEmulatorConfig::default()).await;
    let api = Api::of(&emu);
    let who = api.customer("Sample Shape", "shape@example.com").await;
    let (status, made) = api
        .post(
            "/v1/messages",
            json!({"customer": who, "channel": "voice", "app": "switchboard",
                   "direction": "in", "preview": "hi", "queue": {"external": "amazon-connect"}}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let conv = made["data"]["relationships"]["conversation"]["data"]["id"]
        .as_str()
        .expect("conversation id");
    let (_, got) = api.get(&format!("/v1/conversations/{conv}")).await;
    let expected = sample("kustomer/conversation-get.json");
    let gaps = missing(&expected["data"]["attributes"], &got["data"]["attributes"]);
    assert!(
        gaps.is_empty(),
        "conversation lacks sample attributes {gaps:?}"
    );
    let gaps = missing(
        &expected["data"]["relationships"],
        &got["data"]["relationships"],
    );
    assert!(
        gaps.is_empty(),
        "conversation lacks sample relationships {gaps:?}"
    );

    // The same customer through search has the webhook sample's attributes.
    let (_, found) = api
        .post(
            "/v1/customers/search",
            json!({"and": [{"customer_email": {"equals": "shape@example.com"}}]}),
        )
        .await;
    let hook = sample("kustomer/webhook-customer-create.json");
    let hook_customer = if hook["data"]["data"].is_object() {
        &hook["data"]["data"]
    } else {
        &hook["data"]
    };
    let gaps = missing(
        &hook_customer["attributes"],
        &found["data"][0]["attributes"],
    );
    let tolerated: BTreeSet<&str> = ["custom", "company", "birthdayAt", "gender"].into();
    let gaps: Vec<String> = gaps
        .into_iter()
        .filter(|g| !tolerated.contains(g.as_str()))
        .collect();
    assert!(
        gaps.is_empty(),
        "searched customer lacks sample attributes {gaps:?}"
    );
}

#[tokio::test]
async fn the_request_log_keeps_only_the_newest_entries() {
    let emu = emulator(KustomerEmulatorConfig {
        log_capacity: 5,
        ..Default::default()
    })
    .await;
    let api = Api::of(&emu);
    for _ in 0..12 {
        api.get("/v1/tags").await;
    }
    let log = emu.requests();
    assert_eq!(log.len(), 5);
    assert_eq!(log.last().map(|r| r.seq), Some(12));
    assert_eq!(emu.requests_served(), 12, "the count outlives the log");
}

#[tokio::test]
async fn external_id_lookups_find_the_oldest_holder_and_follow_updates() {
    let emu = emulator(KustomerEmulatorConfig::default()).await;
    let api = Api::of(&emu);
    let who = api.customer("External", "external@example.com").await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, body) = api
            .post(
                &format!("/v1/customers/{who}/conversations"),
                json!({"externalId": "call-77"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["data"]["id"].as_str().expect("id").to_string());
    }
    let (_, found) = api.get("/v1/conversations/externalId=call-77").await;
    assert_eq!(found["data"]["id"], ids[0].as_str(), "the oldest holder");
    let (status, _) = api
        .patch(
            &format!("/v1/conversations/{}", ids[0]),
            json!({"externalId": "call-78"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, found) = api.get("/v1/conversations/externalId=call-77").await;
    assert_eq!(found["data"]["id"], ids[1].as_str(), "the remaining holder");
    let (_, found) = api.get("/v1/conversations/externalId=call-78").await;
    assert_eq!(found["data"]["id"], ids[0].as_str());
    let (status, _) = api.get("/v1/conversations/externalId=call-79").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn notes_and_messages_list_by_customer_and_org() {
    let emu = emulator(KustomerEmulatorConfig::default()).await;
    let api = Api::of(&emu);
    let who = api.customer("Lists", "lists@example.com").await;
    let (_, conv) = api
        .post(&format!("/v1/customers/{who}/conversations"), json!({}))
        .await;
    let conv = conv["data"]["id"].as_str().expect("id").to_string();
    let (status, note) = api
        .post(
            "/v1/notes",
            json!({"conversation": conv, "body": "top-level note"}),
        )
        .await;
    assert_eq!(status, 201, "{note}");
    let (status, err) = api.post("/v1/notes", json!({"body": "nowhere"})).await;
    assert_eq!(status, 400);
    assert_eq!(err["errors"][0]["source"]["pointer"], "/conversation");
    for n in 0..3 {
        api.post(
            "/v1/messages",
            json!({"conversation": conv, "channel": "sms", "app": "switchboard",
                   "direction": "out", "preview": format!("m{n}")}),
        )
        .await;
    }
    let (_, notes) = api.get(&format!("/v1/customers/{who}/notes")).await;
    assert_eq!(notes["meta"]["total"], 1);
    assert_eq!(notes["data"][0]["attributes"]["body"], "top-level note");
    let (_, messages) = api.get("/v1/messages?pageSize=2").await;
    assert_eq!(messages["meta"]["total"], 3);
    assert_eq!(messages["links"]["next"], "/v1/messages?page=2&pageSize=2");
}
