//! Load figures of the Kustomer emulator (ignored by default; run with
//! `cargo test -p switchboard-emulators --release --test bench -- --ignored --nocapture`).
//! The same measurement is `cargo run -p switchboard-emulators --release -- bench`.

use std::path::Path;

use switchboard_emulators::bench::{run_with, BenchArgs};

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement, not a check: takes tens of seconds and depends on the machine"]
async fn kustomer_emulator_cpu_per_request_stays_flat_as_data_grows() {
    let exe = Path::new(env!("CARGO_BIN_EXE_switchboard-emulators"));
    let mut per_request = Vec::new();
    for events in [2_000, 8_000] {
        let report = run_with(
            exe,
            &BenchArgs {
                events,
                customers: events / 4,
                concurrency: 8,
            },
        )
        .await
        .expect("bench run");
        println!("{events} events: {report}");
        per_request.push(report.cpu_per_request());
    }
    let (small, large) = (per_request[0], per_request[1]);
    assert!(
        large < small * 2,
        "CPU per request should not grow with the data held: {small:?} then {large:?}"
    );
}
