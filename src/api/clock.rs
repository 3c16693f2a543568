//! `POST /admin/v1/clock`, served only with `testing.clock_control`: moves
//! the server's clock forward, so that a test sees a token expire, the sweep
//! remove it or a cluster activate without waiting for real time to pass.
//!
//! The body: `advanceSeconds`, a whole number of seconds, 0 or more; and
//! `sweepTokens`, `true` to run the token sweep at once and answer only once
//! it is done (its periodic runs go on as configured).

use actix_web::{web, HttpResponse};

use super::error::{ApiError, ErrorType};
use super::input::{required, JsonBody};
use super::wire::ClockOutput;
use super::{ok_json, AppState};

/// A hundred years: more is a mistake, and stays far from overflowing a
/// millisecond timestamp.
const MAX_ADVANCE_SECONDS: u64 = 100 * 365 * 24 * 3600;

pub async fn advance(state: &AppState, body: JsonBody) -> Result<HttpResponse, ApiError> {
    let seconds = body
        .number("advanceSeconds")?
        .ok_or_else(|| required("advanceSeconds"))?;
    if seconds.fract() != 0.0 || !(0.0..=MAX_ADVANCE_SECONDS as f64).contains(&seconds) {
        return Err(ApiError::invalid_parameter(format!(
            "advanceSeconds must be a whole number of seconds from 0 to \
             {MAX_ADVANCE_SECONDS} (got {seconds}); the clock only moves forward."
        )));
    }
    let sweep = body.bool("sweepTokens")?.unwrap_or(false);
    let now = state.clock.advance(seconds as u64);
    log::info!("clock moved {seconds} s forward, to {now}");
    let swept_tokens = match (&state.clock_control, sweep) {
        (Some(control), true) => {
            let sweep_now = control.sweep_now.clone();
            let swept = web::block(move || sweep_now())
                .await
                .map_err(|e| e.to_string())
                .and_then(|swept| swept)
                .map_err(|e| {
                    log::error!("internal error: the token sweep asked for failed: {e}");
                    ApiError::new(
                        ErrorType::ServerException,
                        "The clock moved, but the token sweep failed; the server log has the details.",
                    )
                })?;
            Some(swept as u64)
        }
        _ => None,
    };
    Ok(ok_json(&ClockOutput {
        now: now.as_epoch_seconds(),
        swept_tokens,
    }))
}
