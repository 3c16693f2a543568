//! `POST /admin/v1/clock` (`testing.clock_control`): the server's clock moved
//! forward, so that tests see time pass without waiting.

use serde_json::json;

use crate::helpers::{now_seconds, sample, TestApp, CLOCK_CONTROL};

#[test]
fn without_clock_control_the_clock_route_is_an_unknown_operation() {
    let app = TestApp::spawn();
    let answer = app.advance_clock_with(&json!({ "advanceSeconds": 60 }));
    let message = answer.error(404, "UnknownOperationException");
    assert!(message.contains("/admin/v1/clock"), "{message}");
    app.get("/admin/v1/clock")
        .error(404, "UnknownOperationException");
}

#[test]
fn the_clock_moves_forward_by_whole_seconds_and_answers_the_new_time() {
    let mut app = TestApp::spawn_with_config(CLOCK_CONTROL);
    let before = now_seconds();
    let start = app.advance_clock(0);
    assert!(start >= before - 1.0, "{start} < {before}");
    let moved = app.advance_clock(86_400);
    assert!(moved >= start + 86_400.0, "{moved} {start}");
    for refused in [json!(-1), json!(1.5), json!("60"), json!(1e12), json!(null)] {
        let message = app
            .advance_clock_with(&json!({ "advanceSeconds": refused }))
            .error(400, "InvalidParameterException");
        assert!(message.contains("advanceSeconds"), "{refused}: {message}");
    }
    assert!(app.advance_clock(0) >= moved, "the clock went back");
    app.get("/admin/v1/clock")
        .error(405, "UnknownOperationException");
    let counted = sample(
        &app.metrics(),
        "pod_identity_store_requests_total{operation=\"AdvanceClock\",status=\"200\"}",
    );
    assert_eq!(counted, Some(3.0));
    // The offset lives in the process: a new one starts from the system clock.
    app.restart();
    assert!(app.advance_clock(0) < moved);
}
