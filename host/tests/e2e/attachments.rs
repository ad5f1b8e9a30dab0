//! Attachments survive lost responses (SPEC KU4): the attachment registered
//! for a recording is kept before its file is uploaded, so retries reuse it.
use crate::support::*;
use switchboard_emulators::kustomer::{Fault, FaultKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ku4_lost_upload_responses_leave_one_attachment_and_no_orphan_e2e() {
    let stack = start_default().await;
    // The storage applies each upload and drops the answer, more times than
    // one Kustomer call retries: the event itself is retried, twice.
    stack.kustomer.control().inject(
        Fault::new(FaultKind::ApplyThenDrop, 12)
            .on_method("POST")
            .on_path("/__upload"),
    );
    play(&stack, "tu3_call_recording").await;
    let requests = stack.kustomer.control().requests();
    let count = |method: &str, prefix: &str| {
        requests
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(prefix))
            .count()
    };
    assert!(
        count("POST", "/__upload") > 10,
        "the lost answers made the event retry: {} uploads",
        count("POST", "/__upload")
    );
    assert_eq!(count("POST", "/v1/attachments"), 1, "registered once");
    let view = View::of(&stack);
    let recordings: Vec<&serde_json::Value> = view
        .attachments
        .iter()
        .filter(|a| attr_str(a, "name") == "call-1010.mp3")
        .collect();
    assert_eq!(
        recordings.len(),
        1,
        "one attachment, however often the upload was retried: {recordings:#?}"
    );
    let referenced: Vec<String> = view
        .notes
        .iter()
        .filter_map(|n| attrs(n)["attachments"].as_array().cloned())
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    assert!(
        view.attachments.iter().all(|a| referenced.contains(&id(a))),
        "every attachment is referenced by a note (no orphan)"
    );
    let content = stack
        .kustomer
        .control()
        .attachment_content(&id(recordings[0]))
        .expect("uploaded");
    assert_eq!(
        content,
        switchboard_emulators::ccai::media_file("recordings/call-1010.mp3").1
    );
    stack.shutdown().await;
}
