//! Generated session events for load: many customers, each starting a new
//! mobile chat that has already chosen a menu (one update, one conversation),
//! in the documented External Session Events item shape the sidecar's intake
//! accepts.
use super::scenarios::stable_uuid;
use serde_json::{json, Value};

/// The `session_created` update of chat number `i` from customer number
/// `caller` (phone `+1 212-2xx-xxxx`, one number per customer). Ids derive from
/// `i`, so the same call is the same event across runs.
pub fn created_event(i: u64, caller: u64) -> Value {
    let id = 500_000 + i;
    let dn = format!("+1 212-{:03}-{:04}", 200 + caller / 10_000, caller % 10_000);
    let timestamp = 1_768_467_600_000_i64 + i64::try_from(i).unwrap_or(i64::MAX / 2_000) * 1000;
    json!({
        "event_id": stable_uuid(&format!("e2e-created-{i}")),
        "timestamp": timestamp,
        "event_type": "session_created",
        "item": {
            "id": id, "channel": "chat", "session_type": "Messaging Inbound (Mobile Chat)",
            "direction": "inbound", "status": "connected", "lang": "en", "dn": dn,
            "created_at": "2026-01-15T09:00:00.000Z",
            "queue_path_names": ["Lock Star"],
            "selected_menu": { "id": 9, "name": "Lock Star", "parent_id": null, "position": 0, "deleted": false, "menu_type": "mobile_menu", "hidden": false },
            "menu_path": { "items_count": 1, "name": "Lock Star", "materialized_path": "9" },
            "end_user": { "id": id + 1, "identifier": null, "email": null, "name": null, "out_contact_id": null },
            "participants": [{ "type": "external", "status": "connected", "dn": dn }]
        }
    })
}

/// A `{count, events[]}` batch of these updates.
pub fn batch(events: Vec<Value>) -> Value {
    json!({ "count": events.len(), "events": events })
}
