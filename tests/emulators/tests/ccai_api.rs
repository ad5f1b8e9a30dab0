//! The CCAI Platform emulator's Manager API against the samples and the
//! reference: menus, teams and their trees, agent timestamps, the chat
//! fields, incremental reads over several `link`-paginated pages (plain and
//! over TLS with a public base URL), and error bodies.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use switchboard_emulators::ccai::{self, Agent, CcaiConfig, CcaiEmulator};

async fn emulator(config: CcaiConfig) -> CcaiEmulator {
    ccai::start(CcaiConfig {
        rate_limit: None,
        ..config
    })
    .await
    .expect("emulator starts")
}

fn client(emu: &CcaiEmulator) -> reqwest::Client {
    let mut b = reqwest::Client::builder();
    if let Some(pem) = emu.certificate_pem() {
        let cert = reqwest::Certificate::from_pem(pem.as_bytes()).expect("certificate");
        b = b.add_root_certificate(cert);
    }
    b.build().expect("client")
}

/// GETs `url` with the API-token credentials: (status, headers, body).
async fn get(
    http: &reqwest::Client,
    emu: &CcaiEmulator,
    url: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let creds = emu.credentials();
    let resp = http
        .get(url)
        .basic_auth(&creds.subdomain, Some(&creds.api_token))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

/// The `rel="next"` target of a `link` header.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, rel) = part.split_once(';')?;
        rel.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

/// Follows `link` from `url` to the end; returns every record and the
/// number of pages.
async fn read_all(http: &reqwest::Client, emu: &CcaiEmulator, url: &str) -> (Vec<Value>, usize) {
    let mut url = url.to_string();
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        let (status, headers, body) = get(http, emu, &url).await;
        assert_eq!(status, 200, "GET {url}: {body}");
        assert!(headers.contains_key("total") && headers.contains_key("per-page"));
        all.extend(body.as_array().cloned().unwrap_or_default());
        pages += 1;
        match next_link(&headers) {
            Some(next) => url = next,
            None => return (all, pages),
        }
    }
}

fn sample_keys(path: &str) -> BTreeSet<String> {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/samples")
        .join(path);
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    let v: Value = serde_json::from_str(&text).expect("sample json");
    v[0].as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn menus_and_teams_list_with_documented_fields_and_trees_nest() {
    let emu = emulator(CcaiConfig::default()).await;
    let http = client(&emu);
    let base = format!("{}/manager/api/v1", emu.base_url());

    let (status, headers, menus) = get(&http, &emu, &format!("{base}/menus")).await;
    assert_eq!(status, 200, "{menus}");
    assert!(headers.contains_key("total"));
    let menu = &menus[0];
    for key in [
        "id",
        "name",
        "parent_id",
        "position",
        "deleted",
        "hidden",
        "menu_type",
        "output_msg",
        "team_assignments",
        "agent_assignments",
    ] {
        assert!(menu.get(key).is_some(), "menu lacks {key}: {menu}");
    }
    let staffed = menus
        .as_array()
        .expect("menus")
        .iter()
        .find(|m| !m["team_assignments"].as_array().is_none_or(Vec::is_empty))
        .expect("a staffed leaf menu");
    assert!(staffed["team_assignments"][0]["team"]["assignees"].is_array());

    let (status, _, tree) = get(&http, &emu, &format!("{base}/menus/tree")).await;
    assert_eq!(status, 200);
    let billing = tree
        .as_array()
        .expect("tree")
        .iter()
        .find(|m| m["name"] == "Billing")
        .expect("Billing at the root");
    assert_eq!(billing["children"][0]["name"], "Disputes", "{billing}");
    assert_eq!(billing["children"][0]["parent_id"], billing["id"]);

    let (status, _, teams) = get(&http, &emu, &format!("{base}/teams")).await;
    assert_eq!(status, 200);
    let team = &teams[0];
    for key in [
        "id",
        "name",
        "parent_id",
        "position",
        "deleted",
        "agents_count",
        "assignees",
    ] {
        assert!(team.get(key).is_some(), "team lacks {key}: {team}");
    }
    for key in ["id", "name"] {
        assert!(
            team["assignees"][0].get(key).is_some(),
            "assignee lacks {key}"
        );
    }
    let (status, _, one) = get(&http, &emu, &format!("{base}/teams/{}", team["id"])).await;
    assert_eq!(status, 200);
    assert_eq!(one["name"], team["name"]);
    let (status, _, tree) = get(&http, &emu, &format!("{base}/teams/tree")).await;
    assert_eq!(status, 200);
    assert!(
        tree[0]["children"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{tree}"
    );
    assert!(tree[0]["parent_id"].is_null());
}

#[tokio::test]
async fn agents_carry_the_sample_fields_and_timestamps_from_their_creation() {
    let emu = emulator(CcaiConfig::default()).await;
    let http = client(&emu);
    let (status, _, agents) = get(
        &http,
        &emu,
        &format!("{}/manager/api/v1/agents", emu.base_url()),
    )
    .await;
    assert_eq!(status, 200);
    let expected = sample_keys("ccai/manager-api-agent-object-schema.json");
    let floor = Utc
        .with_ymd_and_hms(2020, 1, 1, 0, 0, 0)
        .single()
        .expect("date");
    for agent in agents.as_array().expect("agents") {
        let have = keys(agent);
        let gaps: Vec<_> = expected.difference(&have).collect();
        assert!(gaps.is_empty(), "agent lacks {gaps:?}");
        let at = |k: &str| -> DateTime<Utc> {
            agent[k]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.with_timezone(&Utc))
                .unwrap_or_else(|| panic!("{k} of {agent}"))
        };
        assert!(at("status_updated_at") > floor, "{agent}");
        assert!(at("last_login_time") >= at("created_at"), "{agent}");
        assert!(at("status_updated_at") >= at("created_at"), "{agent}");
        assert!(agent["teams"][0]["name"].is_string());
    }
}

#[tokio::test]
async fn agents_read_incrementally_by_status_updated_at_over_several_pages() {
    let emu = emulator(CcaiConfig::default()).await;
    let http = client(&emu);
    let start = Utc
        .with_ymd_and_hms(2026, 4, 1, 9, 0, 0)
        .single()
        .expect("date");
    emu.set_now(start);
    for n in 0..130u64 {
        emu.add_agent(Agent::new(
            1000 + n,
            &format!("agent{n}@example.com"),
            "Bulk",
            &n.to_string(),
        ));
    }
    // Every new agent changes status, one second apart.
    for n in 0..130u64 {
        emu.advance(Duration::from_secs(1));
        emu.set_agent_status(1000 + n, -1).expect("status change");
    }
    let since = "2026-04-01T09:00:31.000Z";
    let url = format!(
        "{}/manager/api/v1/agents?status_updated_at[from]={since}&sort_column=status_updated_at&sort_direction=ASC&per=40",
        emu.base_url()
    );
    let (agents, pages) = read_all(&http, &emu, &url).await;
    assert_eq!(pages, 3, "100 agents at 40 a page");
    let ids: Vec<u64> = agents.iter().filter_map(|a| a["id"].as_u64()).collect();
    assert_eq!(
        ids,
        (1030..1130).collect::<Vec<_>>(),
        "changed since {since}, in order"
    );
}

#[tokio::test]
async fn chats_read_incrementally_by_updated_at_with_the_documented_fields() {
    let emu = emulator(CcaiConfig::default()).await;
    let http = client(&emu);
    let start = Utc
        .with_ymd_and_hms(2026, 4, 2, 8, 0, 0)
        .single()
        .expect("date");
    for n in 0..150i64 {
        let created = start + chrono::Duration::minutes(n);
        let iso = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        emu.upsert_chat(json!({
            "id": 9000 + n,
            "lang": "en",
            "chat_type": "Messaging Inbound (App Chat)",
            "status": "finished",
            "created_at": iso(created),
            "assigned_at": iso(created + chrono::Duration::seconds(20)),
            "ends_at": iso(created + chrono::Duration::seconds(200)),
            "updated_at": iso(created + chrono::Duration::seconds(200)),
            "message_count": 5,
        }));
    }
    let url = format!(
        "{}/manager/api/v1/chats?updated_at[from]=2026-04-02T08:23:20.000Z&sort_column=updated_at&sort_direction=ASC&per=50",
        emu.base_url()
    );
    let (chats, pages) = read_all(&http, &emu, &url).await;
    assert_eq!(chats.len(), 130);
    assert_eq!(pages, 3);
    assert_eq!(chats[0]["id"], 9020);
    let chat = &chats[0];
    assert_eq!(
        chat["first_msg_sent_at"], "2026-04-02T08:20:20.000Z",
        "{chat}"
    );
    assert_eq!(chat["last_msg_sent_at"], "2026-04-02T08:23:20.000Z");
    assert_eq!(chat["average_response_time"], 45, "180 s over 4 gaps");
    assert!(chat["longest_response_time"].as_i64() >= chat["average_response_time"].as_i64());

    // The documented example's keys, up to where it is truncated.
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/samples/ccai/manager-api-chat-object-partial.jsonc");
    let text = std::fs::read_to_string(file).expect("chat sample");
    let head = text.split("\"selected_menu\"").next().unwrap_or_default();
    let documented: Vec<&str> = head
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"')?.split_once('"').map(|(k, _)| k))
        .collect();
    assert!(documented.len() > 20, "parsed {documented:?}");
    let published = emu.chats();
    let stored = published.iter().find(|c| c["id"] == 9020).expect("chat");
    for key in [
        "first_msg_sent_at",
        "last_msg_sent_at",
        "average_response_time",
        "longest_response_time",
        "message_count",
    ] {
        assert!(documented.contains(&key), "{key} is documented");
        assert!(stored.get(key).is_some(), "stored chat lacks {key}");
    }
}

#[tokio::test]
async fn links_use_the_public_base_url_when_one_is_set() {
    let emu = emulator(CcaiConfig {
        public_base_url: Some("https://acme.uc1.ccaiplatform.com/".into()),
        ..Default::default()
    })
    .await;
    let http = client(&emu);
    let (_, headers, _) = get(
        &http,
        &emu,
        &format!("{}/manager/api/v1/agents?per=2", emu.base_url()),
    )
    .await;
    let next = next_link(&headers).expect("a next link");
    assert!(
        next.starts_with("https://acme.uc1.ccaiplatform.com/manager/api/v1/agents?"),
        "{next}"
    );
    assert!(next.contains("page=2") && next.contains("per=2"), "{next}");
}

#[tokio::test]
async fn tls_serves_https_links_a_client_can_follow() {
    let emu = emulator(CcaiConfig {
        tls: true,
        ..Default::default()
    })
    .await;
    assert!(emu.base_url().starts_with("https://127.0.0.1:"));
    let http = client(&emu);
    let (agents, pages) = read_all(
        &http,
        &emu,
        &format!("{}/manager/api/v1/agents?per=3", emu.base_url()),
    )
    .await;
    assert_eq!(agents.len(), emu.agents().len());
    assert!(pages >= 3);
    let plain = reqwest::Client::new();
    assert!(
        plain
            .get(format!("{}/manager/api/v1/agents", emu.base_url()))
            .send()
            .await
            .is_err(),
        "an untrusted self-signed certificate is refused"
    );
}

#[tokio::test]
async fn errors_are_json_messages() {
    let emu = emulator(CcaiConfig::default()).await;
    let http = client(&emu);
    let base = emu.base_url();
    let (status, _, body) = get(&http, &emu, &format!("{base}/manager/api/v1/nothing")).await;
    assert_eq!(status, 404);
    assert_eq!(
        body["message"],
        "Resource not found - Please check your subdomain"
    );
    let (status, _, body) = get(&http, &emu, &format!("{base}/manager/api/v1/teams/999")).await;
    assert_eq!(status, 404);
    assert!(body["message"].is_string());
    let creds = emu.credentials();
    let resp = http
        .delete(format!("{base}/manager/api/v1/menus"))
        .basic_auth(&creds.subdomain, Some(&creds.api_token))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 405);
    let body: Value = resp.json().await.expect("json");
    assert!(body["message"].is_string());
    let resp = http
        .get(format!("{base}/manager/api/v1/menus"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 401);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["message"], "Unauthorized");
}
