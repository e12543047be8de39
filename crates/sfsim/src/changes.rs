//! Change rounds: a seeded batch of realistic activity on a live org — updates, creates,
//! soft deletes, hard deletes, undeletes and parent renames — so a replicating client has
//! something to catch up with. Every change goes through the system write path, so audit
//! fields move and the change log records each version.
//!
//! Amounts apply per object: `"updates": 5` updates five records of each selected object,
//! `"updates": {"share": 0.1}` a tenth of its live records. Parent renames change the field a
//! child formula reads (e.g. `Account.Name` behind `Contact.Account_Name__c`), so children's
//! formula values change while their `SystemModstamp` does not.
//!
//! Deletes do not cascade to children here (a real org cascades some relationships).

use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tidemark_core::{FieldType, SfId};

use crate::generate::names::{CITIES, COMPANY_NOUNS, COMPANY_WORDS, DESCRIPTIONS, STREET_NAMES, TASK_NOTES};
use crate::generate::{AccountInfo, ContactInfo, Gen};
use crate::org::Org;
use crate::row::Slot;
use crate::schema::{FieldDef, Formula};
use crate::value::Value;

/// Objects a change round touches when the spec names none.
pub const DEFAULT_OBJECTS: [&str; 8] =
    ["Account", "Contact", "Lead", "Opportunity", "Case", "Task", "Invoice__c", "Subscription__c"];

/// How many records of each object a kind of change affects.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Amount {
    Count(u64),
    /// A share of the object's live records (of its recycle bin, for undeletes), rounded up.
    Share {
        share: f64,
    },
}

impl Default for Amount {
    fn default() -> Self {
        Amount::Count(0)
    }
}

impl Amount {
    fn of(self, available: usize) -> usize {
        match self {
            Amount::Count(n) => (n as usize).min(available),
            Amount::Share { share } => ((available as f64) * share.clamp(0.0, 1.0)).ceil() as usize,
        }
    }
}

/// What a change round does. JSON: `{"objects":["Account"],"updates":10,"deletes":{"share":0.01}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChangeRoundSpec {
    /// Objects to change; [`DEFAULT_OBJECTS`] when absent.
    pub objects: Option<Vec<String>>,
    pub updates: Amount,
    pub creates: Amount,
    /// Soft deletes (to the recycle bin).
    pub deletes: Amount,
    pub hard_deletes: Amount,
    /// Restores from the recycle bin.
    pub undeletes: Amount,
    /// Renames of parents that child formula fields read.
    pub parent_renames: Amount,
}

/// Ids touched, per kind of change, in the order the changes were made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSummary {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub deleted: Vec<String>,
    pub hard_deleted: Vec<String>,
    pub undeleted: Vec<String>,
    pub renamed_parents: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChangeError {
    #[error("unknown object '{0}'")]
    UnknownObject(String),
    #[error("change rounds cannot create '{0}' records")]
    UnsupportedCreate(String),
}

impl ChangeError {
    /// The spec field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            ChangeError::UnknownObject(_) => "objects",
            ChangeError::UnsupportedCreate(_) => "creates",
        }
    }
}

const CREATABLE: [&str; 9] =
    ["Account", "Contact", "Lead", "Opportunity", "Case", "Task", "Invoice__c", "Subscription__c", "Campaign"];

/// Applies one change round. Deterministic for a given org state, spec and seed.
pub fn apply_change_round(org: &mut Org, spec: &ChangeRoundSpec, seed: u64) -> Result<ChangeSummary, ChangeError> {
    let objects: Vec<String> = match &spec.objects {
        Some(list) => list
            .iter()
            .map(|o| org.table(o).map(|t| t.def.name.clone()).ok_or_else(|| ChangeError::UnknownObject(o.clone())))
            .collect::<Result<_, _>>()?,
        None => DEFAULT_OBJECTS.iter().filter(|o| org.table(o).is_some()).map(|o| (*o).to_owned()).collect(),
    };
    if spec.creates != Amount::Count(0)
        && let Some(bad) = objects.iter().find(|o| !CREATABLE.contains(&o.as_str()))
    {
        return Err(ChangeError::UnsupportedCreate(bad.clone()));
    }
    let mut summary = ChangeSummary::default();
    for (n, object) in objects.iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(n as u64 + 1)));
        let bin = ids(org, object, true);
        for i in sample(&mut rng, bin.len(), spec.undeletes.of(bin.len())) {
            if org.undelete(&bin[i]).is_ok() {
                summary.undeleted.push(bin[i].to_string());
            }
        }
        let live = ids(org, object, false);
        let (u, d, h) = (spec.updates.of(live.len()), spec.deletes.of(live.len()), spec.hard_deletes.of(live.len()));
        let picked: Vec<SfId> = sample(&mut rng, live.len(), (u + d + h).min(live.len())).into_iter().map(|i| live[i]).collect();
        let (to_update, rest) = picked.split_at(u.min(picked.len()));
        let (to_delete, to_hard_delete) = rest.split_at(d.min(rest.len()));
        for id in to_update {
            if let Some(updates) = random_update(org, object, id, &mut rng)
                && org.update_record(id, updates).is_ok()
            {
                summary.updated.push(id.to_string());
            }
        }
        rename_parents(org, object, spec.parent_renames, &mut rng, &mut summary);
        let creates = spec.creates.of(usize::MAX);
        if creates > 0 {
            let created = create(org, object, creates, rng.random())?;
            summary.created.extend(created);
        }
        for id in to_delete {
            if org.soft_delete(id).is_ok() {
                summary.deleted.push(id.to_string());
            }
        }
        for id in to_hard_delete {
            if org.hard_delete(id).is_ok() {
                summary.hard_deleted.push(id.to_string());
            }
        }
    }
    tracing::info!(
        updated = summary.updated.len(),
        created = summary.created.len(),
        deleted = summary.deleted.len(),
        hard_deleted = summary.hard_deleted.len(),
        undeleted = summary.undeleted.len(),
        renamed = summary.renamed_parents.len(),
        "change round applied"
    );
    Ok(summary)
}

/// Live (or recycle-bin) record ids of `object`, in table order.
fn ids(org: &Org, object: &str, deleted: bool) -> Vec<SfId> {
    org.table(object)
        .map(|t| t.rows().iter().filter(|r| t.is_deleted(r) == deleted).map(|r| t.id_of(r)).collect())
        .unwrap_or_default()
}

/// Fields a generic update may change: plain, writable, stored values with no uniqueness.
fn updatable(f: &FieldDef) -> bool {
    f.updateable
        && f.slot.is_some()
        && !f.unique
        && !f.external_id
        && f.reference_to.is_empty()
        && f.compound_field_name.is_none()
        && !matches!(f.field_type, FieldType::Base64 | FieldType::AnyType | FieldType::Id)
}

/// One or two realistic field changes for record `id` of `object`.
fn random_update(org: &Org, object: &str, id: &SfId, rng: &mut ChaCha8Rng) -> Option<Vec<(Slot, Value)>> {
    let table = org.table(object)?;
    let row = table.get(id)?;
    let def = &table.def;
    let candidates: Vec<&FieldDef> = def.fields.iter().filter(|f| updatable(f)).collect();
    if candidates.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for _ in 0..rng.random_range(1..=2) {
        let f = candidates[rng.random_range(0..candidates.len())];
        if let (Some(slot), Some(v)) = (f.slot, random_value(f, org.now_millis(), rng)) {
            out.push((slot, v));
        }
    }
    // A person's full name is maintained by the platform from its parts.
    if let (Some(first), Some(last), Some(name)) = (def.field("FirstName"), def.field("LastName"), def.field("Name"))
        && !name.updateable
        && let (Some(fs), Some(ls), Some(ns)) = (first.slot, last.slot, name.slot)
        && out.iter().any(|(s, _)| *s == fs || *s == ls)
    {
        let part = |slot: Slot| -> String {
            match out.iter().rev().find(|(s, _)| *s == slot) {
                Some((_, Value::Str(v))) => v.clone(),
                Some(_) => String::new(),
                None => row.get(slot).as_str().unwrap_or_default().to_owned(),
            }
        };
        let full = format!("{} {}", part(fs), part(ls)).trim().to_owned();
        out.push((ns, Value::Str(full)));
    }
    (!out.is_empty()).then_some(out)
}

/// A value valid for `f`'s type and constraints.
fn random_value(f: &FieldDef, now: i64, rng: &mut ChaCha8Rng) -> Option<Value> {
    const DAY: i64 = 86_400_000;
    let pick = |rng: &mut ChaCha8Rng, items: &[&str]| items[rng.random_range(0..items.len())].to_owned();
    let max_len = |s: String| -> String { s.chars().take(f.length.max(1) as usize).collect() };
    Some(match f.field_type {
        FieldType::String => Value::Str(max_len(format!(
            "{} {}",
            pick(rng, &COMPANY_WORDS),
            if f.name_field { pick(rng, &COMPANY_NOUNS) } else { rng.random_range(1..10_000).to_string() }
        ))),
        FieldType::Textarea if f.html_formatted => Value::Str(format!("<p>{}</p>", pick(rng, &TASK_NOTES))),
        FieldType::Textarea => Value::Str(max_len(pick(rng, &DESCRIPTIONS))),
        FieldType::Picklist | FieldType::Combobox => {
            let active: Vec<&str> = f.picklist_values.iter().filter(|p| p.active).map(|p| p.value.as_str()).collect();
            if active.is_empty() {
                return None;
            }
            Value::Str(pick(rng, &active))
        }
        FieldType::Multipicklist => {
            let active: Vec<&str> = f.picklist_values.iter().filter(|p| p.active).map(|p| p.value.as_str()).collect();
            if active.is_empty() {
                return None;
            }
            let (a, b) = (pick(rng, &active), pick(rng, &active));
            Value::Str(if a == b { a } else { format!("{a};{b}") })
        }
        FieldType::Boolean => Value::Bool(rng.random_bool(0.5)),
        FieldType::Int | FieldType::Long => Value::Int(rng.random_range(0..10_000)),
        FieldType::Percent => Value::Double(rng.random_range(0..=100) as f64),
        FieldType::Double | FieldType::Currency => {
            let digits = f.precision.saturating_sub(f.scale).clamp(1, 9);
            let max = 10f64.powi(i32::from(digits)) - 1.0;
            let v = rng.random_range(0.0..max.min(1_000_000.0));
            let factor = 10f64.powi(i32::from(f.scale.min(2)));
            Value::Double((v * factor).round() / factor)
        }
        FieldType::Date => Value::Date(((now + rng.random_range(-365..365) * DAY).div_euclid(DAY)) as i32),
        FieldType::Datetime => {
            let t = now - rng.random_range(0..30 * DAY);
            Value::DateTime(t - t % 1000)
        }
        FieldType::Time => Value::Time(rng.random_range(0..48) * 30 * 60_000),
        FieldType::Email => {
            Value::Str(format!("contact{}@{}.com", rng.random_range(1..100_000), pick(rng, &COMPANY_WORDS).to_ascii_lowercase()))
        }
        FieldType::Phone => Value::Str(format!("({}) 555-{:04}", rng.random_range(201..990), rng.random_range(0..10_000))),
        FieldType::Url => {
            Value::Str(format!("https://www.{}.com/{}", pick(rng, &STREET_NAMES).to_ascii_lowercase(), rng.random_range(1..1000)))
        }
        FieldType::Encryptedstring => Value::Str(format!("{:012}", rng.random_range(0..1_000_000_000_000u64))),
        _ => return None,
    })
}

/// Renames parents of `object` that some child formula reads (`ParentField`).
fn rename_parents(org: &mut Org, object: &str, amount: Amount, rng: &mut ChaCha8Rng, summary: &mut ChangeSummary) {
    if amount == Amount::Count(0) {
        return;
    }
    // The parent fields of `object` that formulas elsewhere read.
    let mut read_fields: Vec<String> = Vec::new();
    for t in org.tables() {
        for f in &t.def.fields {
            if let Some(Formula::ParentField { reference_field, parent_field }) = &f.formula
                && t.def.field(reference_field).is_some_and(|r| r.reference_to.iter().any(|p| p == object))
                && !read_fields.contains(parent_field)
            {
                read_fields.push(parent_field.clone());
            }
        }
    }
    let Some(table) = org.table(object) else { return };
    let fields: Vec<FieldDef> =
        read_fields.iter().filter_map(|n| table.def.field(n)).filter(|f| f.slot.is_some()).cloned().collect();
    if fields.is_empty() {
        return;
    }
    let live = ids(org, object, false);
    let now = org.now_millis();
    for i in sample(rng, live.len(), amount.of(live.len())) {
        let f = &fields[rng.random_range(0..fields.len())];
        let value = if f.field_type == FieldType::String {
            Some(Value::Str(format!(
                "{} {}",
                COMPANY_WORDS[rng.random_range(0..COMPANY_WORDS.len())],
                COMPANY_NOUNS[rng.random_range(0..COMPANY_NOUNS.len())]
            )))
        } else {
            random_value(f, now, rng)
        };
        if let (Some(slot), Some(v)) = (f.slot, value)
            && org.update_record(&live[i], vec![(slot, v)]).is_ok()
        {
            summary.renamed_parents.push(live[i].to_string());
        }
    }
}

/// Creates `n` new records of `object`, stamped now, with live parents where needed.
fn create(org: &mut Org, object: &str, n: usize, seed: u64) -> Result<Vec<String>, ChangeError> {
    let accounts = ids(org, "Account", false);
    let contacts = ids(org, "Contact", false);
    let needs_account = !matches!(object, "Account" | "Lead" | "Campaign");
    if needs_account && accounts.is_empty() {
        return Ok(Vec::new());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let picks: Vec<(Option<SfId>, Option<SfId>)> = (0..n)
        .map(|_| {
            let a = (!accounts.is_empty()).then(|| accounts[rng.random_range(0..accounts.len())]);
            let c = (!contacts.is_empty()).then(|| contacts[rng.random_range(0..contacts.len())]);
            (a, c)
        })
        .collect();
    let infos: Vec<(Option<AccountInfo>, Option<ContactInfo>)> = picks
        .iter()
        .map(|(a, c)| (a.and_then(|a| account_info(org, &a, &mut rng)), c.and_then(|c| contact_info(org, &c))))
        .collect();
    // Numbers of new cases, invoices and subscriptions continue above anything issued so far:
    // the id counter only grows and exceeds every generated record count.
    let base = org.id_counter();
    let mut g = Gen::for_changes(org, seed);
    let mut created = Vec::with_capacity(n);
    for (i, (account, contact)) in infos.iter().enumerate() {
        let i = base + i as u64;
        let id = match (object, account, contact) {
            ("Account", _, _) => Some(g.account(i).id),
            ("Lead", _, _) => Some(g.lead()),
            ("Campaign", _, _) => Some(g.campaign(i)),
            ("Contact", Some(a), _) => Some(g.contact(a).id),
            ("Opportunity", Some(a), _) => {
                let opp = g.opportunity(a);
                g.line_item(&opp, 0);
                Some(opp.id)
            }
            ("Case", Some(a), Some(c)) => Some(g.case(a, c, i).id),
            ("Task", Some(a), Some(c)) => Some(g.task(a, std::slice::from_ref(c), None, None)),
            ("Invoice__c", Some(a), _) => Some(g.invoice(a, i)),
            ("Subscription__c", Some(a), _) => Some(g.subscription(a, i)),
            (other, _, _) if !CREATABLE.contains(&other) => {
                return Err(ChangeError::UnsupportedCreate(other.to_owned()));
            }
            _ => None,
        };
        created.extend(id);
    }
    Ok(created)
}

fn account_info(org: &Org, id: &SfId, rng: &mut ChaCha8Rng) -> Option<AccountInfo> {
    let (table, row) = org.find(id)?;
    let name = row.get(table.def.field("Name")?.slot?).as_str().unwrap_or("Account").to_owned();
    let domain = format!("{}.com", name.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase());
    let city = CITIES[rng.random_range(0..CITIES.len())];
    Some(AccountInfo {
        id: id.to_string(),
        name,
        created: org.stamp_millis(),
        domain,
        city,
        street: format!("{} {} St", rng.random_range(1..9000), STREET_NAMES[rng.random_range(0..STREET_NAMES.len())]),
        phone: format!("({}) 555-{:04}", rng.random_range(201..990), rng.random_range(0..10_000)),
    })
}

fn contact_info(org: &Org, id: &SfId) -> Option<ContactInfo> {
    let (table, row) = org.find(id)?;
    let name = row.get(table.def.field("Name")?.slot?).as_str().unwrap_or_default().to_owned();
    Some(ContactInfo { id: id.to_string(), name, created: org.stamp_millis() })
}
