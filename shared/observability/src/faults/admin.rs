//! `GET | PUT | DELETE /admin/faults`: read, replace and clear the fault plan.
//!
//! Every answer is the switch's state: `{"enabled", "plan", "active", "step", "set_at", "dependencies"}`,
//! where `plan` is what was `PUT` (send it back to restore it) and `active` what is in effect now.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::{FaultPlan, Faults, known_dependencies};
use crate::problem::Problem;
use crate::service_token::ServiceToken;

/// The route the switch is mounted on.
pub const ADMIN_FAULTS_PATH: &str = "/admin/faults";

pub(super) fn router(faults: Faults) -> Router {
    Router::new().route(ADMIN_FAULTS_PATH, get(show).put(replace).delete(clear)).with_state(faults)
}

async fn show(State(faults): State<Faults>, headers: HeaderMap) -> Response {
    if let Some(refused) = refuse_unauthorized(&faults, &headers) {
        return refused;
    }
    axum::Json(state(&faults)).into_response()
}

async fn replace(State(faults): State<Faults>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = refuse_unauthorized(&faults, &headers) {
        return refused;
    }
    let plan: FaultPlan = match serde_json::from_slice(&body) {
        Ok(plan) => plan,
        Err(error) => return Problem::bad_request(format!("not a fault plan: {error}")).into_response(),
    };
    match faults.replace(plan) {
        Ok(()) => axum::Json(state(&faults)).into_response(),
        Err(errors) => Problem::validation(errors).into_response(),
    }
}

async fn clear(State(faults): State<Faults>, headers: HeaderMap) -> Response {
    if let Some(refused) = refuse_unauthorized(&faults, &headers) {
        return refused;
    }
    faults.clear();
    axum::Json(state(&faults)).into_response()
}

fn state(faults: &Faults) -> Value {
    let position = faults.position();
    json!({
        "enabled": faults.is_enabled(),
        "plan": faults.plan(),
        "active": position.faults,
        "step": position.step,
        "set_at": faults.set_at().to_rfc3339(),
        "dependencies": known_dependencies(),
    })
}

/// With a token configured, the request must carry `Authorization: Bearer <token>`; otherwise a 401.
fn refuse_unauthorized(faults: &Faults, headers: &HeaderMap) -> Option<Response> {
    let expected = ServiceToken::new(faults.admin_token()?);
    if expected.authorizes(headers) {
        None
    } else {
        Some(Problem::unauthorized("the fault switch needs the service's admin token").into_response())
    }
}
