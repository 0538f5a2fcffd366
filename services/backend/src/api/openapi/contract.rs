//! What every operation can answer besides its own outcomes, derived from what the operation has: a credential
//! (401), a `/v1` route (429, per-client and per-user limits), a JSON body (400, 413, 415, 422), `If-Match`
//! (400, 412, and 428 where it is required), `Idempotency-Key` (400, 410, 422), query parameters (400), and on every
//! operation 500, 503 (database unavailable) and 504 (deadline). Every problem response names the one
//! `Problem` schema, whose `type` lists every [`ProblemType`]; the shared headers get their exact syntax; and
//! links connect a created task to the operations on it, so a client (or a stateful test) can follow them.

use observability::ProblemType;
use observability::problem::PROBLEM_JSON;
use serde_json::{Map, Value, json};

use crate::domain::OwnerId;
use crate::domain::notification::{EMAIL_MAX_LEN, WEBHOOK_URL_MAX_LEN};
use crate::idempotency::IdempotencyKey;

const METHODS: [&str; 5] = ["get", "put", "post", "patch", "delete"];
const PROBLEM_REF: &str = "#/components/schemas/Problem";

/// `If-Match`: `*`, or entity tags (strong or weak) separated by commas; tags hold no comma or quote.
pub const IF_MATCH_PATTERN: &str = r#"^(\*|(W/)?"[!#-+.-~-]*"( *, *(W/)?"[!#-+.-~-]*")*)$"#;
/// `Idempotency-Key`: 1 to 255 visible ASCII characters.
pub const IDEMPOTENCY_KEY_PATTERN: &str = r"^[!-~]{1,255}$";

/// Title and label text: one line (no control characters) and not blank; lengths are in the schemas.
pub const LINE_PATTERN: &str =
    r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";
/// Description text: line breaks and tabs are the only control characters allowed.
pub const DESCRIPTION_PATTERN: &str = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$";

/// An e-mail address as the backend accepts it: dot-separated atoms, `@`, two or more DNS labels.
pub const EMAIL_PATTERN: &str = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$";
/// A user id (a token's `sub`): 1 to 255 characters without control characters.
pub const USER_ID_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]{1,255}$";

/// Adds the shared responses, the problem schema, the text and zone syntax, the header syntax and the links to
/// `document`.
pub fn complete(document: &mut Value) {
    document["components"]["schemas"]["Problem"] = problem_schema();
    refine_task_fields(&mut document["components"]["schemas"]);
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            if let Some(operation) = item.get_mut(method) {
                complete_operation(path, operation);
            }
        }
    }
    add_links(document);
}

fn complete_operation(path: &str, operation: &mut Value) {
    let mut statuses = vec![500, 503, 504];
    if operation.get("security").and_then(Value::as_array).is_some_and(|security| !security.is_empty()) {
        statuses.push(401);
    }
    if path.starts_with("/v1/") {
        statuses.push(429);
    }
    if operation.get("requestBody").is_some() {
        statuses.extend([400, 413, 415, 422]);
        accept_plain_json_too(operation);
    }
    for parameter in operation.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
        match (parameter["in"].as_str(), parameter["name"].as_str()) {
            (Some("header"), Some("If-Match")) => {
                statuses.extend([400, 412]);
                // Where it is needed, a request without it is answered 428 Precondition Required (RFC 6585).
                if parameter["required"] == true {
                    statuses.push(428);
                }
                parameter["schema"] =
                    json!({ "type": "string", "pattern": IF_MATCH_PATTERN, "examples": ["*", "\"1\""] });
            }
            (Some("header"), Some("Idempotency-Key")) => {
                // 410: the keyed request succeeded before and its task has since been deleted.
                statuses.extend([400, 410, 422]);
                parameter["schema"] = json!({ "type": "string", "minLength": 1, "maxLength": IdempotencyKey::MAX_LEN, "pattern": IDEMPOTENCY_KEY_PATTERN });
            }
            (Some("query"), name) => {
                statuses.push(400);
                if name == Some("label") {
                    parameter["schema"]["pattern"] = json!(LINE_PATTERN);
                }
            }
            (Some("path"), Some("user_id")) => {
                parameter["schema"] = json!({ "type": "string", "minLength": 1, "maxLength": OwnerId::MAX_LEN, "pattern": USER_ID_PATTERN });
            }
            _ => {}
        }
    }
    let responses = operation["responses"].as_object_mut();
    let Some(responses) = responses else {
        return;
    };
    for status in statuses {
        responses.entry(status.to_string()).or_insert_with(|| json!({ "description": "" }));
    }
    for (status, response) in responses.iter_mut() {
        let Ok(code) = status.parse::<u16>() else {
            continue;
        };
        if code < 400 {
            continue;
        }
        let kinds = kinds_of(code);
        let description = match response["description"].as_str().filter(|own| !own.is_empty()) {
            Some(own) => format!("{own}. {kinds}"),
            None => kinds,
        };
        response["description"] = json!(description);
        response["content"] = json!({ PROBLEM_JSON: { "schema": { "$ref": PROBLEM_REF } } });
    }
}

/// Bodies are read as JSON whatever `application/*+json` type names them; a merge patch may come as plain JSON.
fn accept_plain_json_too(operation: &mut Value) {
    let Some(content) = operation["requestBody"]["content"].as_object_mut() else {
        return;
    };
    if !content.contains_key("application/json")
        && let Some(schema) = content.values().next().cloned()
    {
        content.insert("application/json".to_owned(), schema);
    }
}

/// What the annotations cannot say: the text patterns (one home, here) and the IANA zone names `chrono-tz` knows.
fn refine_task_fields(schemas: &mut Value) {
    let zones: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|zone| zone.name()).collect();
    for request in ["CreateTaskRequest", "UpdateTaskRequest"] {
        let properties = &mut schemas[request]["properties"];
        properties["title"]["pattern"] = json!(LINE_PATTERN);
        properties["description"]["pattern"] = json!(DESCRIPTION_PATTERN);
        properties["time_zone"]["enum"] = json!(zones);
        properties["labels"]["uniqueItems"] = json!(true);
    }
    schemas["LabelDto"]["pattern"] = json!(LINE_PATTERN);
    let settings = &mut schemas["NotificationSettingsDto"]["properties"];
    settings["email"]["pattern"] = json!(EMAIL_PATTERN);
    settings["email"]["maxLength"] = json!(EMAIL_MAX_LEN);
    settings["webhook_url"]["pattern"] = json!("^https://[^\\s]+$");
    settings["webhook_url"]["maxLength"] = json!(WEBHOOK_URL_MAX_LEN);
}

/// "Problem types: `urn:…:a`, `urn:…:b`" for the kinds sent with `status`.
fn kinds_of(status: u16) -> String {
    let kinds: Vec<String> = ProblemType::ALL
        .into_iter()
        .filter(|kind| kind.status().is_some_and(|s| s.as_u16() == status))
        .map(|kind| format!("`{}`", kind.uri()))
        .collect();
    if kinds.is_empty() { "A problem document.".to_owned() } else { format!("Problem type {}.", kinds.join(" or ")) }
}

/// RFC 9457 problem details as Taskwatch sends them.
fn problem_schema() -> Value {
    let types: Vec<String> = ProblemType::ALL.into_iter().map(ProblemType::uri).collect();
    json!({
        "type": "object",
        "description": "RFC 9457 problem details. Branch on `type`; `title` and `detail` are for people.",
        "required": ["type", "title", "status"],
        "properties": {
            "type": { "type": "string", "enum": types, "description": "What kind of problem this is; see the API reference." },
            "title": { "type": "string" },
            "status": { "type": "integer", "minimum": 400, "maximum": 599 },
            "detail": { "type": "string" },
            "errors": {
                "type": "array",
                "description": "One entry per invalid field or parameter (422, and 400 for query parameters and headers).",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": { "field": { "type": "string" }, "message": { "type": "string" } }
                }
            },
            "fault": { "type": "string", "description": "Set on failures injected by the fault switch." }
        }
    })
}

/// Links from a task the API returns to the operations on it (with its `ETag` as `If-Match`), and from a created
/// occurrence to its internal read.
fn add_links(document: &mut Value) {
    let on_task = |operation_id: &str, with_etag: bool| {
        let mut parameters = Map::new();
        parameters.insert("id".to_owned(), json!("$response.body#/id"));
        if with_etag {
            parameters.insert("header.If-Match".to_owned(), json!("$response.header.ETag"));
        }
        json!({ "operationId": operation_id, "parameters": parameters })
    };
    let task_links = json!({
        "GetTask": on_task("get_task", false),
        "UpdateTask": on_task("update_task", true),
        "CompleteTask": on_task("complete_task", true),
        "ReopenTask": on_task("reopen_task", true),
        "DeleteTask": on_task("delete_task", true),
    });
    for (path, method, status) in [
        ("/v1/tasks", "post", "201"),
        ("/v1/tasks/{id}", "get", "200"),
        ("/v1/tasks/{id}", "patch", "200"),
        ("/v1/tasks/{id}/complete", "post", "200"),
        ("/v1/tasks/{id}/reopen", "post", "200"),
    ] {
        document["paths"][path][method]["responses"][status]["links"] = task_links.clone();
    }
    let internal_read =
        json!({ "GetTask": { "operationId": "internal_get_task", "parameters": { "id": "$response.body#/id" } } });
    for status in ["200", "201"] {
        document["paths"]["/internal/v1/series/{series_id}/occurrences"]["post"]["responses"][status]["links"] =
            internal_read.clone();
    }
}
