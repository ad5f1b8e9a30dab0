use super::scenarios::{media_file, scenarios, Step, MEDIA_BASE};
use super::state::{paginate, Credentials, State};
use serde_json::json;
use std::collections::HashSet;

#[test]
fn every_spec_rule_of_sections_2_to_4_has_a_scenario() {
    let covered: HashSet<&str> = scenarios()
        .iter()
        .flat_map(|s| s.spec_ids.iter().copied())
        .collect();
    for id in [
        "TC1", "TC2", "TC3", "TC4", "TC5", "TU1", "TU2", "TU3", "TU4", "TU5", "TU6", "TU7", "TU8",
        "TU9", "TU10", "TU11", "CC1", "CC2", "CU1", "PN1", "CT1", "SD1", "AA1",
    ] {
        assert!(covered.contains(id), "no scenario for {id}");
    }
    let names: HashSet<&str> = scenarios().iter().map(|s| s.name).collect();
    assert_eq!(names.len(), scenarios().len(), "scenario names are unique");
}

#[test]
fn scenario_event_ids_are_stable_and_unique_across_scenarios() {
    let ids = |list: Vec<super::Scenario>| -> Vec<String> {
        list.iter()
            .flat_map(|s| s.session_events())
            .map(|e| e["event_id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let first = ids(scenarios());
    assert_eq!(first, ids(scenarios()), "same ids on every run");
    let tc1 = scenarios()
        .into_iter()
        .find(|s| s.name == "tc1_inbound_ivr_call")
        .expect("tc1");
    let repeated = tc1.session_events().len()
        - tc1
            .session_events()
            .iter()
            .map(|e| e["event_id"].to_string())
            .collect::<HashSet<_>>()
            .len();
    assert_eq!(repeated, 1, "tc1 delivers one update twice");
    let unique: HashSet<&String> = first.iter().collect();
    assert_eq!(unique.len() + repeated, first.len());
}

#[test]
fn every_scenario_has_final_records_for_the_manager_api() {
    for s in scenarios() {
        assert!(
            s.steps
                .iter()
                .any(|st| matches!(st, Step::FinalCall(_) | Step::FinalChat(_))),
            "{} has no final record",
            s.name
        );
    }
}

#[test]
fn refused_status_changes_keep_the_current_status() {
    let mut state = State::new(Credentials::default(), None);
    let results = state
        .change_statuses(&json!({ "status": "Available", "agent_ids": [11, 12] }))
        .expect("200");
    assert_eq!(results[0]["current_status"], "Available");
    assert_eq!(
        results[1]["message"],
        "Agent can't be changed from system status 'In-call'"
    );
    assert_eq!(results[1]["current_status"], "In-call");
    assert_eq!(
        state.activity_logs.len(),
        1,
        "only the applied change is logged"
    );
}

#[test]
fn pages_are_clamped_and_filtered_inclusively() {
    let records: Vec<_> = (1..=250)
        .map(|i| json!({ "id": i, "updated_at": format!("2026-01-01T00:{:02}:00.000Z", i % 60) }))
        .collect();
    let query = vec![("per".to_string(), "500".to_string())];
    let page = paginate(&records, &query, "updated_at");
    assert_eq!((page.per, page.items.len(), page.total), (100, 100, 250));
    let query = vec![(
        "updated_at[from]".to_string(),
        "2026-01-01T00:59:00.000Z".to_string(),
    )];
    assert_eq!(
        paginate(&records, &query, "updated_at").total,
        4,
        "inclusive lower bound"
    );
}

#[test]
fn scenario_files_point_at_the_placeholder_until_localised() {
    let all = scenarios();
    let text = |s: &super::Scenario| format!("{:?}", s.steps);
    assert!(
        all.iter().all(|s| !text(s).contains("example.invalid")),
        "no scenario names an unresolvable file host"
    );
    let tu3 = all
        .iter()
        .find(|s| s.name == "tu3_call_recording")
        .expect("tu3");
    assert!(text(tu3).contains(&format!("{MEDIA_BASE}/media/recordings/call-1010.mp3")));
    let local = tu3.with_media_base("http://127.0.0.1:9/");
    assert!(text(&local).contains("http://127.0.0.1:9/media/recordings/call-1010.mp3"));
    assert!(!text(&local).contains(MEDIA_BASE));
    let ids = |s: &super::Scenario| {
        s.session_events()
            .iter()
            .map(|e| e["event_id"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(tu3),
        ids(&local),
        "event ids do not depend on the file host"
    );
}

#[test]
fn media_files_are_deterministic_and_typed() {
    let (kind, first) = media_file("recordings/call-1010.mp3");
    assert_eq!(kind, "audio/mpeg");
    assert!(first.starts_with(b"ID3"));
    assert_eq!(media_file("recordings/call-1010.mp3").1, first);
    assert_ne!(media_file("recordings/call-1011.mp3").1, first);
    let (kind, photo) = media_file("smart-actions/1016/photo-1.jpg");
    assert_eq!(kind, "image/jpeg");
    assert!(photo.starts_with(&[0xff, 0xd8]) && photo.ends_with(&[0xff, 0xd9]));
}

#[test]
fn the_vip_demo_scenario_comes_last_and_carries_vip_custom_data() {
    let all = scenarios();
    let last = all.last().expect("scenarios");
    assert_eq!(last.name, "demo_vip_caller");
    assert!(last.spec_ids.is_empty(), "not a SPEC rule");
    let events = last.session_events();
    let vip = events.last().expect("events");
    assert_eq!(vip["item"]["custom_data"]["vip"]["value"], json!(true));
    assert_eq!(vip["item"]["custom_data"]["loyalty_tier"]["value"], "gold");
    assert_eq!(
        events[0]["item"]["dn"], vip["item"]["dn"],
        "same caller twice"
    );
}
