//! `POST /admin/v1/clock`, served only with `testing.clock_control`: moves
//! the server's clock forward, so that a test sees a token expire, the sweep
//! remove it or a cluster activate without waiting for real time to pass.

use actix_web::HttpResponse;

use super::error::ApiError;
use super::input::{required, JsonBody};
use super::wire::ClockOutput;
use super::{ok_json, AppState};

/// A hundred years: more is a mistake, and stays far from overflowing a
/// millisecond timestamp.
const MAX_ADVANCE_SECONDS: u64 = 100 * 365 * 24 * 3600;

pub fn advance(state: &AppState, body: JsonBody) -> Result<HttpResponse, ApiError> {
    let seconds = body
        .number("advanceSeconds")?
        .ok_or_else(|| required("advanceSeconds"))?;
    if seconds.fract() != 0.0 || !(0.0..=MAX_ADVANCE_SECONDS as f64).contains(&seconds) {
        return Err(ApiError::invalid_parameter(format!(
            "advanceSeconds must be a whole number of seconds from 0 to \
             {MAX_ADVANCE_SECONDS} (got {seconds}); the clock only moves forward."
        )));
    }
    let now = state.clock.advance(seconds as u64);
    if let Some(control) = &state.clock_control {
        (control.after_advance)();
    }
    log::info!("clock moved {seconds} s forward, to {now}");
    Ok(ok_json(&ClockOutput {
        now: now.as_epoch_seconds(),
    }))
}
