//! What the platform delivers for a call placed through the Apps API
//! (`POST /apps/api/v1/calls`, `Voice Outbound (API)`): once the agent's
//! adapter dials, the call's External Session Events (created, agent
//! assigned, agent connected, ended) and its final Manager API record.
//! [`CcaiEmulator::api_call_scenario`] builds them from the stored call so a
//! test can play them to the sidecar like any other scenario.

use super::scenarios::{stable_uuid, Scenario, Step, Stream};
use super::state::iso;
use super::CcaiEmulator;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

impl CcaiEmulator {
    /// The session of API-placed call `call_id`, connected 5 s after it
    /// was placed and ended `talk_secs` later; `None` for an unknown call.
    /// The stored record becomes the final one when the scenario is played.
    pub fn api_call_scenario(&self, call_id: u64, talk_secs: i64) -> Option<Scenario> {
        let call = self.shared.lock().calls.get(&call_id).cloned()?;
        let created = call["created_at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_else(|| self.now());
        let at = |secs: i64| created + Duration::seconds(secs);
        let info = &call["agent_info"];
        // The Apps API call object's `agent_info` has no email; session events
        // carry it, so take it from the agent record.
        let email = info["id"]
            .as_u64()
            .and_then(|id| self.agent(id))
            .map_or(Value::Null, |a| Value::String(a.email));
        let agent = json!({ "id": info["id"], "name": info["name"], "email": email });
        let dn = call["end_user_number"].clone();
        let mut item = json!({
            "id": call_id,
            "channel": "call",
            "session_type": "Voice Outbound (API)",
            "direction": "outbound",
            "status": "connected",
            "lang": call["lang"],
            "created_at": iso(created),
            "dn": dn,
            "end_user": call["end_user"],
            "agent": agent,
            "assigned_at": iso(created),
            "participants": [
                { "type": "external", "status": "connected", "dn": dn },
                { "type": "agent", "status": "accepted", "agent": agent, "connected_at": null },
            ],
        });
        let mut events = Vec::new();
        let mut emit = |item: &Value, event_type: &str, secs: i64| {
            let seq = events.len() + 1;
            events.push(json!({
                "event_id": stable_uuid(&format!("call-{call_id}/api/{seq}/{event_type}")),
                "timestamp": at(secs).timestamp_millis(),
                "event_type": event_type,
                "item": item,
            }));
        };
        emit(&item, "session_created", 0);
        emit(&item, "agent_assigned", 0);
        item["connected_at"] = json!(iso(at(5)));
        item["participants"][1]["status"] = json!("connected");
        item["participants"][1]["connected_at"] = json!(iso(at(5)));
        emit(&item, "agent_connected", 5);
        item["status"] = json!("disconnected");
        item["ends_at"] = json!(iso(at(5 + talk_secs)));
        item["call_duration"] = json!(talk_secs);
        item["hold_duration"] = json!(0);
        item["wait_duration"] = json!(0);
        item["participants"][0]["status"] = json!("disconnected");
        item["participants"][1]["status"] = json!("disconnected");
        emit(&item, "session_ended", 5 + talk_secs);

        let mut record = call;
        record["status"] = json!("finished");
        record["connected_at"] = item["connected_at"].clone();
        record["ends_at"] = item["ends_at"].clone();
        record["updated_at"] = json!(iso(at(65 + talk_secs)));
        record["call_duration"] = json!(talk_secs);
        record["session_type_v2"] = json!("Voice Outbound (API)");
        let mut steps: Vec<Step> = events
            .into_iter()
            .map(|e| Step::SessionEvents {
                stream: Stream::Calls,
                batch: json!({ "count": 1, "events": [e] }),
            })
            .collect();
        steps.push(Step::FinalCall(record));
        Some(Scenario {
            name: "api_outbound_call",
            spec_ids: &["C2C2", "TC3", "TU2"],
            description: "A call placed through the Apps API, dialled by the agent's adapter",
            steps,
        })
    }
}
