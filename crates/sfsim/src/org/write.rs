//! The validated write path shared by every API that changes records: sObject Rows, sObject
//! Collections, Bulk API 2.0/1.0 ingest. It resolves field names, coerces JSON or CSV text to the
//! field's type, checks permissions and validation, and reports failures with Salesforce's
//! status codes. Everything then goes through the system write path in [`super`].

use serde_json::Value as J;
use tidemark_core::{FieldType, SfId};

use super::transaction::Transaction;
use super::{Org, OrgError};
use crate::row::Slot;
use crate::schema::{FieldDef, ObjectDef};
use crate::value::{Value, parse_date, parse_datetime, parse_time};

/// A field value as a client sent it.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// From a JSON body (REST, Collections).
    Json(&'a J),
    /// From a CSV cell (Bulk). On update an empty cell leaves the field unchanged and `#N/A`
    /// sets it to null; on insert both mean null.
    Text(&'a str),
}

/// One record-level error, as Collections and Bulk results report it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    pub status_code: String,
    pub message: String,
    pub fields: Vec<String>,
}

impl RecordError {
    pub fn new(status_code: &str, message: impl Into<String>, fields: Vec<String>) -> RecordError {
        RecordError { status_code: status_code.to_owned(), message: message.into(), fields }
    }

    /// Bulk's `sf__Error` text: `STATUS_CODE:message:fields --`, or `STATUS_CODE:message:--`
    /// without fields (as in observed failedResults files).
    pub fn bulk_text(&self) -> String {
        if self.fields.is_empty() {
            return format!("{}:{}:--", self.status_code, self.message);
        }
        format!("{}:{}:{} --", self.status_code, self.message, self.fields.join(","))
    }
}

pub type FieldInputs<'a> = [(&'a str, Input<'a>)];

/// Outcome of an upsert.
#[derive(Debug, Clone, PartialEq)]
pub enum UpsertOutcome {
    Created(SfId),
    Updated(SfId),
    /// The external id matched several records (REST answers 300 with their URLs).
    MultipleMatches(Vec<SfId>),
}

fn invalid_field(object: &str, field: &str) -> RecordError {
    RecordError::new("INVALID_FIELD", format!("No such column '{field}' on sobject of type {object}"), vec![field.to_owned()])
}

/// One error naming every field the record may not write, as Salesforce reports them.
fn not_writable(fields: Vec<String>) -> RecordError {
    RecordError::new(
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        format!(
            "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your Profile or Permission set.",
            fields.join(", ")
        ),
        fields,
    )
}

fn wrong_type(field: &FieldDef, shown: &str) -> RecordError {
    RecordError::new(
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        format!("{}: value not of required type: {shown}", field.label),
        vec![field.name.clone()],
    )
}

/// Coerces one input to a stored value. `Ok(None)` means "leave unchanged" (an empty CSV cell on
/// update).
pub fn coerce(field: &FieldDef, input: Input<'_>, is_insert: bool) -> Result<Option<Value>, RecordError> {
    let text = match input {
        Input::Json(J::Null) => return Ok(Some(Value::Null)),
        Input::Text("") => return Ok(if is_insert { Some(Value::Null) } else { None }),
        Input::Text("#N/A") => return Ok(Some(Value::Null)),
        Input::Json(J::String(s)) => s.as_str(),
        Input::Text(s) => s,
        Input::Json(J::Bool(b)) => return coerce_bool(field, *b),
        Input::Json(J::Number(n)) => return coerce_number(field, n.as_f64().unwrap_or(f64::NAN), &n.to_string()),
        Input::Json(other) => return Err(wrong_type(field, &other.to_string())),
    };
    let ty = field.field_type;
    let v = match ty {
        FieldType::Boolean => match text.to_ascii_lowercase().as_str() {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(wrong_type(field, text)),
        },
        FieldType::Int | FieldType::Long | FieldType::Double | FieldType::Currency | FieldType::Percent => {
            let n: f64 = text.trim().parse().map_err(|_| wrong_type(field, text))?;
            return coerce_number(field, n, text);
        }
        FieldType::Date => Value::Date(parse_date(text).ok_or_else(|| wrong_type(field, text))?),
        FieldType::Datetime => Value::DateTime(parse_datetime(text).ok_or_else(|| wrong_type(field, text))?),
        FieldType::Time => Value::Time(parse_time(text).ok_or_else(|| wrong_type(field, text))?),
        FieldType::Id | FieldType::Reference => {
            if text.is_empty() {
                Value::Null
            } else {
                let id = SfId::parse(text).map_err(|_| {
                    RecordError::new(
                        "MALFORMED_ID",
                        format!("{}: id value of incorrect type: {text}", field.label),
                        vec![field.name.clone()],
                    )
                })?;
                Value::str(id.as_str())
            }
        }
        _ => Value::str(text),
    };
    Ok(Some(v))
}

fn coerce_bool(field: &FieldDef, b: bool) -> Result<Option<Value>, RecordError> {
    match field.field_type {
        FieldType::Boolean => Ok(Some(Value::Bool(b))),
        t if t.is_textual() => Ok(Some(Value::str(b.to_string()))),
        _ => Err(wrong_type(field, &b.to_string())),
    }
}

fn coerce_number(field: &FieldDef, n: f64, shown: &str) -> Result<Option<Value>, RecordError> {
    if !n.is_finite() {
        return Err(wrong_type(field, shown));
    }
    Ok(Some(match field.field_type {
        FieldType::Int | FieldType::Long => {
            if n.fract() != 0.0 {
                return Err(wrong_type(field, shown));
            }
            Value::Int(n as i64)
        }
        FieldType::Double | FieldType::Currency | FieldType::Percent => Value::Double(n),
        t if t.is_textual() => Value::str(shown),
        _ => return Err(wrong_type(field, shown)),
    }))
}

/// Resolves and coerces inputs for `def`, checking that each field exists and is writable.
fn resolve(def: &ObjectDef, inputs: &FieldInputs<'_>, is_insert: bool) -> Result<Vec<(usize, Value)>, Vec<RecordError>> {
    let mut out = Vec::with_capacity(inputs.len());
    let mut errors = Vec::new();
    let mut read_only = Vec::new();
    for (name, input) in inputs {
        if name.eq_ignore_ascii_case("Id") && !is_insert {
            continue;
        }
        let Some(idx) = def.field_index(name) else {
            errors.push(invalid_field(&def.name, name));
            continue;
        };
        let field = &def.fields[idx];
        let writable = if is_insert { field.createable } else { field.updateable };
        if !writable || field.slot.is_none() {
            if !read_only.contains(&field.name) {
                read_only.push(field.name.clone());
            }
            continue;
        }
        match coerce(field, *input, is_insert) {
            Ok(Some(v)) => out.push((idx, v)),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    if !read_only.is_empty() {
        errors.insert(0, not_writable(read_only));
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

fn to_slots(def: &ObjectDef, values: Vec<(usize, Value)>) -> Vec<(Slot, Value)> {
    values.into_iter().filter_map(|(i, v)| def.fields[i].slot.map(|s| (s, v))).collect()
}

impl Org {
    /// Creates a record through the API. Applies defaults, validates, and stamps audit fields.
    pub fn api_create(&mut self, object: &str, inputs: &FieldInputs<'_>) -> Result<SfId, Vec<RecordError>> {
        self.api_create_in(None, object, inputs)
    }

    /// [`Org::api_create`] inside an all-or-none transaction (journaled when `tx` is given).
    pub fn api_create_in(
        &mut self,
        tx: Option<&mut Transaction>,
        object: &str,
        inputs: &FieldInputs<'_>,
    ) -> Result<SfId, Vec<RecordError>> {
        let table = self.table(object).ok_or_else(|| vec![unknown_object(object)])?;
        let def = &table.def;
        if !def.flags.createable {
            return Err(vec![RecordError::new(
                "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                format!("entity type {} does not support insert", def.name),
                vec![],
            )]);
        }
        let mut values = resolve(def, inputs, true)?;
        for (i, f) in def.fields.iter().enumerate() {
            if let Some(default) = &f.default_value
                && !values.iter().any(|(j, _)| *j == i)
            {
                values.push((i, default.clone()));
            }
        }
        self.set_platform_values(def, None, &mut values);
        self.validate(def, None, &values)?;
        let slots = to_slots(def, values);
        let name = def.name.clone();
        let id = self.insert_record(&name, slots).map_err(|e| vec![org_error(e)])?;
        if let Some(tx) = tx {
            self.journal_created(tx, &id);
        }
        Ok(id)
    }

    /// Updates a record through the API. `object`, when given, must match the id's object.
    pub fn api_update(&mut self, object: Option<&str>, id: &str, inputs: &FieldInputs<'_>) -> Result<SfId, Vec<RecordError>> {
        self.api_update_in(None, object, id, inputs)
    }

    /// [`Org::api_update`] inside an all-or-none transaction.
    pub fn api_update_in(
        &mut self,
        tx: Option<&mut Transaction>,
        object: Option<&str>,
        id: &str,
        inputs: &FieldInputs<'_>,
    ) -> Result<SfId, Vec<RecordError>> {
        let id = self.existing_live_id(object, id).map_err(|e| vec![update_id_error(self, object, id, e)])?;
        let table = self.table_for_id(&id).expect("existing id has a table");
        let def = &table.def;
        if !def.flags.updateable {
            return Err(vec![RecordError::new(
                "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                format!("entity type {} does not support update", def.name),
                vec![],
            )]);
        }
        let mut values = resolve(def, inputs, false)?;
        self.set_platform_values(def, table.get(&id), &mut values);
        self.validate(def, Some(&id), &values)?;
        let slots = to_slots(def, values);
        if let Some(tx) = tx {
            self.journal_before_write(tx, &id);
        }
        self.update_record(&id, slots).map_err(|e| vec![org_error(e)])?;
        Ok(id)
    }

    /// Values the platform maintains itself: on create `OwnerId` defaults to the running user,
    /// and a person's `Name` (Contact, Lead, User: `personname`) follows `FirstName` and
    /// `LastName`. `current` is the record being updated (`None` on create).
    fn set_platform_values(&self, def: &ObjectDef, current: Option<&crate::row::Row>, values: &mut Vec<(usize, Value)>) {
        let written = |values: &[(usize, Value)], i: usize| values.iter().rev().find(|(j, _)| *j == i).map(|(_, v)| v.clone());
        if current.is_none()
            && let Some(owner) = def.field_index("OwnerId").filter(|&i| def.fields[i].slot.is_some())
            && written(values, owner).is_none()
        {
            values.push((owner, Value::str(self.integration_user.as_str())));
        }
        let Some(name) = def.field_index("Name").filter(|&i| def.fields[i].extra_type_info.as_deref() == Some("personname"))
        else {
            return;
        };
        let (Some(first), Some(last)) = (def.field_index("FirstName"), def.field_index("LastName")) else { return };
        if current.is_some() && written(values, first).is_none() && written(values, last).is_none() {
            return;
        }
        let part = |i: usize| -> Option<String> {
            let v = written(values, i).or_else(|| current.zip(def.fields[i].slot).map(|(r, slot)| r.get(slot).to_owned()))?;
            match v {
                Value::Str(s) if !s.trim().is_empty() => Some(s),
                _ => None,
            }
        };
        let full: Vec<String> = [part(first), part(last)].into_iter().flatten().collect();
        values.push((name, if full.is_empty() { Value::Null } else { Value::str(full.join(" ")) }));
    }

    /// Upserts on `external_field` (an external-id field, or `Id`).
    pub fn api_upsert(
        &mut self,
        object: &str,
        external_field: &str,
        external_value: &str,
        inputs: &FieldInputs<'_>,
    ) -> Result<UpsertOutcome, Vec<RecordError>> {
        self.api_upsert_in(None, object, external_field, external_value, inputs)
    }

    /// [`Org::api_upsert`] inside an all-or-none transaction.
    pub fn api_upsert_in(
        &mut self,
        tx: Option<&mut Transaction>,
        object: &str,
        external_field: &str,
        external_value: &str,
        inputs: &FieldInputs<'_>,
    ) -> Result<UpsertOutcome, Vec<RecordError>> {
        let table = self.table(object).ok_or_else(|| vec![unknown_object(object)])?;
        let def = &table.def;
        let is_id = external_field.eq_ignore_ascii_case("Id");
        let Some(ext) = self.upsert_key_field(object, external_field) else {
            return Err(vec![external_field_not_found(external_field)]);
        };
        if external_value.is_empty() && !is_id {
            return Err(vec![RecordError::new("MISSING_ARGUMENT", format!("{} not specified", ext.name), vec![])]);
        }
        let matches: Vec<SfId> = if external_value.is_empty() {
            Vec::new()
        } else if is_id {
            let parsed = SfId::parse(external_value).ok().filter(|p| p.key_prefix() == def.key_prefix);
            let Some(parsed) = parsed else {
                return Err(vec![RecordError::new(
                    "MALFORMED_ID",
                    format!("{}: id value of incorrect type: {external_value}", id_label(def)),
                    vec!["Id".to_owned()],
                )]);
            };
            match table.get(&parsed) {
                Some(row) if !table.is_deleted(row) => vec![parsed],
                Some(_) => return Err(vec![entity_is_deleted()]),
                None => return Err(vec![invalid_cross_reference()]),
            }
        } else {
            super::validate::find_by_text(table, ext, external_value)
        };
        match matches.as_slice() {
            [] => {
                let ext_name = ext.name.clone();
                let mut with_key: Vec<(&str, Input<'_>)> = inputs.to_vec();
                if !is_id && !inputs.iter().any(|(n, _)| n.eq_ignore_ascii_case(&ext_name)) {
                    with_key.push((external_field, Input::Text(external_value)));
                }
                if is_id {
                    with_key.retain(|(n, _)| !n.eq_ignore_ascii_case("Id"));
                }
                self.api_create_in(tx, object, &with_key).map(UpsertOutcome::Created)
            }
            [one] => {
                let one = *one;
                let without_key: Vec<(&str, Input<'_>)> =
                    inputs.iter().filter(|(n, _)| !n.eq_ignore_ascii_case("Id")).copied().collect();
                self.api_update_in(tx, Some(object), one.as_str(), &without_key).map(UpsertOutcome::Updated)
            }
            many => Ok(UpsertOutcome::MultipleMatches(many.to_vec())),
        }
    }

    /// The field an upsert may key on: `Id`, an external id, or a unique id-lookup field.
    pub fn upsert_key_field(&self, object: &str, external_field: &str) -> Option<&FieldDef> {
        let def = &self.table(object)?.def;
        let is_id = external_field.eq_ignore_ascii_case("Id");
        def.field(external_field).filter(|f| is_id || f.external_id || f.id_lookup && f.unique).filter(|f| f.slot.is_some())
    }

    /// Soft-deletes through the API, moving master-detail children to the recycle bin with it.
    pub fn api_delete(&mut self, object: Option<&str>, id: &str) -> Result<SfId, RecordError> {
        self.api_delete_in(None, object, id)
    }

    /// [`Org::api_delete`] inside an all-or-none transaction.
    pub fn api_delete_in(
        &mut self,
        mut tx: Option<&mut Transaction>,
        object: Option<&str>,
        id: &str,
    ) -> Result<SfId, RecordError> {
        let id = self.existing_live_id(object, id)?;
        let table = self.table_for_id(&id).expect("existing id has a table");
        if !table.def.flags.deletable {
            return Err(RecordError::new("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id", vec![]));
        }
        let victims = self.cascade_victims(&id);
        self.check_restricted_delete(&victims)?;
        for victim in &victims {
            if let Some(tx) = tx.as_deref_mut() {
                self.journal_before_write(tx, victim);
            }
            self.soft_delete(victim).map_err(org_error)?;
        }
        tracing::debug!(cascaded = victims.len() - 1, "record deleted");
        Ok(id)
    }

    /// Hard-deletes through the API (Bulk `hardDelete`); master-detail children go with it.
    pub fn api_hard_delete(&mut self, object: Option<&str>, id: &str) -> Result<SfId, RecordError> {
        let id = self.existing_live_id(object, id)?;
        let victims = self.cascade_victims(&id);
        self.check_restricted_delete(&victims)?;
        for victim in victims.iter().rev() {
            self.hard_delete(victim).map_err(org_error)?;
        }
        Ok(id)
    }

    /// Parses `id`, checks it exists (optionally in `object`) and is not in the recycle bin.
    pub fn existing_live_id(&self, object: Option<&str>, id: &str) -> Result<SfId, RecordError> {
        let parsed = SfId::parse(id).map_err(|_| malformed_id(id))?;
        let table = self.table_for_id(&parsed).ok_or_else(|| malformed_id(id))?;
        if let Some(object) = object
            && !table.def.name.eq_ignore_ascii_case(object)
        {
            return Err(malformed_id(id));
        }
        let row = table.get(&parsed).ok_or_else(invalid_cross_reference)?;
        if table.is_deleted(row) {
            return Err(entity_is_deleted());
        }
        Ok(parsed)
    }

    /// `id` followed by every live record that master-detail cascades delete with it.
    fn cascade_victims(&self, id: &SfId) -> Vec<SfId> {
        self.cascade_walk(id, |table, row| !table.is_deleted(row), None)
    }

    /// `id` followed by the recycle-bin children that were deleted together with it.
    pub(super) fn cascade_restorees(&self, id: &SfId) -> Vec<SfId> {
        let deleted_at = self.table_for_id(id).and_then(|t| t.delete_log().iter().find(|(d, _)| d == id).map(|(_, at)| *at));
        self.cascade_walk(id, |table, row| table.is_deleted(row), deleted_at)
    }

    /// Breadth-first walk down cascade-delete relationships from `root`, keeping rows that
    /// satisfy `keep` (and, when `deleted_at` is set, were deleted at that instant).
    fn cascade_walk(
        &self,
        root: &SfId,
        keep: impl Fn(&super::ObjectTable, &crate::row::Row) -> bool,
        deleted_at: Option<i64>,
    ) -> Vec<SfId> {
        let mut out = vec![*root];
        let mut frontier = vec![*root];
        while !frontier.is_empty() {
            let mut next = Vec::new();
            for table in self.tables() {
                for f in table.def.fields.iter().filter(|f| f.cascade_delete) {
                    let Some(slot) = f.slot else { continue };
                    for row in table.rows() {
                        let Some(parent) = row.get(slot).as_str() else { continue };
                        if !frontier.iter().any(|p| p.as_str() == parent) || !keep(table, row) {
                            continue;
                        }
                        let child = table.id_of(row);
                        let same_delete =
                            deleted_at.is_none_or(|at| table.delete_log().iter().any(|(d, t)| *d == child && *t == at));
                        if same_delete && !out.contains(&child) {
                            out.push(child);
                            next.push(child);
                        }
                    }
                }
            }
            frontier = next;
        }
        out
    }

    /// `DELETE_FAILED` when a live record outside `victims` points at one of them through a
    /// lookup with `restrictedDelete`.
    fn check_restricted_delete(&self, victims: &[SfId]) -> Result<(), RecordError> {
        for table in self.tables() {
            for f in table.def.fields.iter().filter(|f| f.restricted_delete) {
                let Some(slot) = f.slot else { continue };
                for row in table.rows().iter().filter(|r| !table.is_deleted(r)) {
                    let Some(parent) = row.get(slot).as_str() else { continue };
                    let Some(victim) = victims.iter().find(|v| v.as_str() == parent) else { continue };
                    let child = table.id_of(row);
                    if victims.contains(&child) {
                        continue;
                    }
                    return Err(RecordError::new(
                        "DELETE_FAILED",
                        format!(
                            "Your attempt to delete {} could not be completed because it is associated with the following {}.: {}",
                            self.display_name(victim),
                            table.def.label_plural.to_lowercase(),
                            self.display_name(&child),
                        ),
                        vec![],
                    ));
                }
            }
        }
        Ok(())
    }

    /// A record's Name (its name field) or, lacking one, its id.
    fn display_name(&self, id: &SfId) -> String {
        self.find(id)
            .and_then(|(t, row)| {
                let f = t.def.fields.iter().find(|f| f.name_field)?;
                self.field_value(t, row, f).as_ref().as_str().map(str::to_owned)
            })
            .unwrap_or_else(|| id.to_string())
    }

    /// Field-level and rule validation of a create (`id == None`) or update.
    fn validate(&self, def: &ObjectDef, id: Option<&SfId>, values: &[(usize, Value)]) -> Result<(), Vec<RecordError>> {
        let mut errors = Vec::new();
        let current = id.and_then(|id| self.table_for_id(id)).zip(id).and_then(|(t, id)| t.get(id));
        let value_of = |i: usize| -> Option<&Value> { values.iter().rev().find(|(j, _)| *j == i).map(|(_, v)| v) };
        // Required fields: on create, absent or null; on update, explicitly nulled.
        let mut missing = Vec::new();
        for (i, f) in def.fields.iter().enumerate() {
            let required = !f.nillable && f.createable && f.slot.is_some() && !f.defaulted_on_create;
            if !required {
                continue;
            }
            let v = value_of(i);
            let is_missing = match (id, v) {
                (None, None) => true,
                (_, Some(Value::Null)) => true,
                (_, Some(Value::Str(s))) if s.is_empty() => true,
                _ => false,
            };
            if is_missing {
                missing.push(f.name.clone());
            }
        }
        if !missing.is_empty() {
            errors.push(RecordError::new(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
                missing,
            ));
        }
        for (i, v) in values {
            if let Err(e) = super::validate::check_value(self, &def.fields[*i], v) {
                errors.push(e);
            }
        }
        // Custom validation rules run once the field-level checks pass; the unique indexes are
        // only consulted when the record would be saved.
        if errors.is_empty() {
            errors.extend(super::validate::check_rules(self, def, id, values));
        }
        if errors.is_empty() {
            errors.extend(super::validate::check_unique_values(self, def, values, current));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

/// The label of an object's Id field, e.g. `Contact ID`.
fn id_label(def: &ObjectDef) -> String {
    def.field("Id").map(|f| f.label.clone()).unwrap_or_else(|| format!("{} ID", def.label))
}

/// Updates name a bad id the way Salesforce does: `Contact ID: id value of incorrect type: …`.
fn update_id_error(org: &Org, object: Option<&str>, id: &str, e: RecordError) -> RecordError {
    if e.status_code != "MALFORMED_ID" {
        return e;
    }
    let def = object.and_then(|o| org.table(o)).map(|t| &t.def);
    match def {
        Some(def) => RecordError::new(
            "MALFORMED_ID",
            format!("{}: id value of incorrect type: {id}", id_label(def)),
            vec!["Id".to_owned()],
        ),
        None => e,
    }
}

fn unknown_object(object: &str) -> RecordError {
    RecordError::new("INVALID_TYPE", format!("sObject type '{object}' is not supported."), vec![])
}

/// The row error of an upsert whose external id matches several records (Collections, Bulk):
/// `DUPLICATE_EXTERNAL_ID` `<field label>: more than one record found for external id field:
/// [<ids>]`, as real results print it.
pub fn multiple_external_matches(org: &Org, object: &str, key_field: &str, ids: &[SfId]) -> RecordError {
    let def = org.table(object).map(|t| &t.def);
    let field = def.and_then(|d| d.field(key_field));
    let label = field.map_or(key_field, |f| f.label.as_str());
    let name = field.map_or(key_field, |f| f.name.as_str()).to_owned();
    let list: Vec<&str> = ids.iter().map(SfId::as_str).collect();
    RecordError::new(
        "DUPLICATE_EXTERNAL_ID",
        format!("{label}: more than one record found for external id field: [{}]", list.join(", ")),
        vec![name],
    )
}

pub(super) fn malformed_id(id: &str) -> RecordError {
    RecordError::new("MALFORMED_ID", format!("malformed id {id}"), vec![])
}

pub(super) fn entity_is_deleted() -> RecordError {
    RecordError::new("ENTITY_IS_DELETED", "entity is deleted", vec![])
}

pub(super) fn invalid_cross_reference() -> RecordError {
    RecordError::new("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", vec![])
}

fn external_field_not_found(field: &str) -> RecordError {
    RecordError::new("NOT_FOUND", format!("Provided external ID field does not exist or is not accessible: {field}"), vec![])
}

pub(super) fn org_error(e: OrgError) -> RecordError {
    match e {
        OrgError::UnknownObject(o) => unknown_object(&o),
        OrgError::UnknownField { object, field } => invalid_field(&object, &field),
        OrgError::EntityIsDeleted(_) => entity_is_deleted(),
        OrgError::NotFound(_) => invalid_cross_reference(),
        OrgError::NotDeleted(_) => RecordError::new("UNDELETE_FAILED", "Entity is not in the recycle bin", vec![]),
    }
}
