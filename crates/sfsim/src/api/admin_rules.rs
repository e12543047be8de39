//! `/__admin/validation-rules`: validation rules tests configure at run time.
//!
//! | route | body / query | answer |
//! |---|---|---|
//! | `GET /__admin/validation-rules?object=` | | `{"rules":[rule…]}` |
//! | `POST /__admin/validation-rules` | a rule | the rule as stored (names as the describe spells them) |
//! | `DELETE /__admin/validation-rules?object=&name=` | | `{"removed":n}` (no `name`: all of the object's; neither: all) |
//!
//! A rule: `{"object":"Account","name":"Name_Not_Test","field":"Name","when":{"equals":"Test"},
//! "message":"Name must not be Test","error_field":"Name"}`. `when` is one of `{"equals":x}`
//! (must not be x), `{"not_equals":x}` (must be x), `{"like":p}` (must not match), `{"not_like":p}`
//! (must match), `{"blank":true}` (required), `{"less_than":n}`, `{"greater_than":n}`; patterns
//! are SOQL `LIKE` (`%`, `_`, case-insensitive); a null value fails only `blank`.
//! `error_field` (optional) is where the error shows: `fields:[error_field]`, else `fields:[]`.
//! Posting a rule with an existing name (per object) replaces it.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value as J, json};

use super::AppState;
use super::admin::AdminError;
use crate::schema::{RuleCondition, ValidationRule};

pub fn routes() -> Router<AppState> {
    Router::new().route("/__admin/validation-rules", get(list).post(set).delete(remove))
}

/// `when`, as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum WhenDto {
    Equals(J),
    NotEquals(J),
    Like(String),
    NotLike(String),
    Blank(bool),
    LessThan(f64),
    GreaterThan(f64),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDto {
    object: String,
    name: String,
    field: String,
    when: WhenDto,
    message: String,
    #[serde(default)]
    error_field: Option<String>,
}

/// A JSON scalar as the text a rule compares with.
fn text_of(v: &J) -> Result<String, AdminError> {
    match v {
        J::String(s) => Ok(s.clone()),
        J::Number(n) => Ok(n.to_string()),
        J::Bool(b) => Ok(b.to_string()),
        _ => Err(AdminError::bad("when", "equals/not_equals take a string, number or boolean")),
    }
}

fn condition(when: &WhenDto) -> Result<RuleCondition, AdminError> {
    Ok(match when {
        WhenDto::Equals(v) => RuleCondition::Equals(text_of(v)?),
        WhenDto::NotEquals(v) => RuleCondition::NotEquals(text_of(v)?),
        WhenDto::Like(p) => RuleCondition::Like(p.clone()),
        WhenDto::NotLike(p) => RuleCondition::NotLike(p.clone()),
        WhenDto::Blank(true) => RuleCondition::IsBlank,
        WhenDto::Blank(false) => return Err(AdminError::bad("when", "blank takes true")),
        WhenDto::LessThan(n) => RuleCondition::LessThan(*n),
        WhenDto::GreaterThan(n) => RuleCondition::GreaterThan(*n),
    })
}

fn rule_json(object: &str, r: &ValidationRule) -> J {
    let when = match &r.when {
        RuleCondition::Equals(s) => json!({ "equals": s }),
        RuleCondition::NotEquals(s) => json!({ "not_equals": s }),
        RuleCondition::Like(p) => json!({ "like": p }),
        RuleCondition::NotLike(p) => json!({ "not_like": p }),
        RuleCondition::IsBlank => json!({ "blank": true }),
        RuleCondition::LessThan(n) => json!({ "less_than": n }),
        RuleCondition::GreaterThan(n) => json!({ "greater_than": n }),
    };
    json!({
        "object": object,
        "name": r.name,
        "field": r.field,
        "when": when,
        "message": r.message,
        "error_field": r.error_field,
    })
}

#[derive(Debug, Deserialize)]
struct Filter {
    object: Option<String>,
    name: Option<String>,
}

async fn list(State(state): State<AppState>, Query(f): Query<Filter>) -> Result<Json<J>, AdminError> {
    let org = state.org.read();
    if let Some(o) = &f.object
        && org.table(o).is_none()
    {
        return Err(AdminError::bad("object", format!("unknown object '{o}'")));
    }
    let rules: Vec<J> = org.validation_rules(f.object.as_deref()).iter().map(|(o, r)| rule_json(o, r)).collect();
    Ok(Json(json!({ "rules": rules })))
}

async fn set(State(state): State<AppState>, body: Bytes) -> Result<Json<J>, AdminError> {
    let dto: RuleDto = serde_json::from_slice(&body).map_err(|e| {
        let msg = e.to_string();
        let field = ["object", "name", "field", "when", "message", "error_field"]
            .into_iter()
            .find(|f| msg.contains(&format!("`{f}`")))
            .unwrap_or(if msg.contains("variant") { "when" } else { "body" });
        AdminError::bad(field, msg)
    })?;
    let rule = ValidationRule {
        name: dto.name,
        field: dto.field,
        when: condition(&dto.when)?,
        message: dto.message,
        error_field: dto.error_field.filter(|f| !f.is_empty()),
    };
    let mut org = state.org.write();
    let stored = org.set_validation_rule(&dto.object, rule).map_err(|e| AdminError::bad(e.field, e.message))?;
    let object = org.table(&dto.object).map(|t| t.def.name.clone()).unwrap_or(dto.object);
    Ok(Json(rule_json(&object, &stored)))
}

async fn remove(State(state): State<AppState>, Query(f): Query<Filter>) -> Result<Json<J>, AdminError> {
    let removed = state
        .org
        .write()
        .remove_validation_rules(f.object.as_deref(), f.name.as_deref())
        .map_err(|e| AdminError::bad(e.field, e.message))?;
    Ok(Json(json!({ "removed": removed })))
}
