//! Deterministic, realistic data for the simulated org.
//!
//! The same seed and scale always produce the same records, ids and timestamps. Scale is the
//! number of Accounts; everything else is proportional:
//!
//! | object | per Account | notes |
//! |---|---|---|
//! | Contact | 5/4 | two on every fourth account, one on the others |
//! | Opportunity | 1/2 | every other account |
//! | OpportunityLineItem | 1/2 | one per opportunity |
//! | Task | 1/2 | who = a contact, what = account, opportunity or case |
//! | Case | 1/4 | |
//! | Lead | 1/4 | unrelated to accounts |
//! | Invoice__c | 1/4 | |
//! | Subscription__c | 1/8 | master-detail child |
//! | CampaignMember | 1/10 | first contact joins a campaign |
//! | AccountFeed | 1/20 | |
//! | AccountHistory | 1/20 | |
//! | Attachment | 1/50 | small base64 body |
//! | User | 5 + 1/2,000 | the first one is the integration user |
//! | Campaign | 3 + 1/500 | |
//! | UserLicense | 3 fixed | |
//!
//! About five records per Account: with the row encoding's fixed cost per record (audit
//! fields, ids, index), that is what keeps 1,000,000 Accounts near 2 GB.
//!
//! Every record gets back-dated history within the last three years:
//! `CreatedDate ≤ LastModifiedDate = SystemModstamp ≤ now`, children created after their
//! parents, stamped to the whole second as Salesforce stores them (unless the org keeps
//! millisecond stamps). Generation bypasses the change log (the truth dump lists current state from the
//! tables), so the log starts empty and records only what happens afterwards.

pub(crate) mod names;
pub(crate) mod records;
pub(crate) mod slots;

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::org::Org;
use crate::row::Slot;
use crate::value::Value;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateSpec {
    pub seed: u64,
    pub accounts: u64,
    /// `Username` of the integration user (the first User).
    pub username: String,
}

/// Records generated per object.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GenerateSummary {
    pub counts: BTreeMap<String, u64>,
}

impl GenerateSummary {
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// How many children each Account gets: a child of kind X exists for account `i` when
/// `i % X_EVERY == X_OFFSET` (offsets spread children over different accounts).
pub mod ratios {
    /// Contacts: `CONTACTS_MANY` on every `CONTACTS_MANY_EVERY`-th account, `CONTACTS_FEW` on
    /// the others.
    pub const CONTACTS_MANY: u64 = 2;
    pub const CONTACTS_MANY_EVERY: u64 = 4;
    pub const CONTACTS_FEW: u64 = 1;
    pub const OPPORTUNITY_EVERY: u64 = 2;
    pub const LINE_ITEMS_PER_OPPORTUNITY: u64 = 1;
    pub const TASK_EVERY: u64 = 2;
    pub const CASE_EVERY: u64 = 4;
    pub const LEAD_EVERY: u64 = 4;
    pub const INVOICE_EVERY: u64 = 4;
    pub const SUBSCRIPTION_EVERY: u64 = 8;
    pub const CAMPAIGN_MEMBER_EVERY: u64 = 10;
    pub const FEED_EVERY: u64 = 20;
    pub const HISTORY_EVERY: u64 = 20;
    pub const ATTACHMENT_EVERY: u64 = 50;
    pub const USERS_BASE: u64 = 5;
    pub const ACCOUNTS_PER_EXTRA_USER: u64 = 2_000;
    pub const CAMPAIGNS_BASE: u64 = 3;
    pub const ACCOUNTS_PER_EXTRA_CAMPAIGN: u64 = 500;
}

/// Offsets of each kind within its period.
mod offsets {
    pub const OPPORTUNITY: u64 = 0;
    pub const TASK: u64 = 1;
    pub const CASE: u64 = 0;
    pub const LEAD: u64 = 3;
    pub const INVOICE: u64 = 2;
    pub const SUBSCRIPTION: u64 = 5;
    pub const CAMPAIGN_MEMBER: u64 = 0;
    pub const FEED: u64 = 0;
    pub const HISTORY: u64 = 10;
    pub const ATTACHMENT: u64 = 7;
}

/// How many `i in 0..n` have `i % every == offset`.
fn periodic(n: u64, every: u64, offset: u64) -> u64 {
    if n <= offset { 0 } else { (n - offset).div_ceil(every) }
}

/// The record counts generation will produce for `accounts`.
pub fn expected_counts(accounts: u64) -> BTreeMap<&'static str, u64> {
    use ratios::*;
    let opportunities = periodic(accounts, OPPORTUNITY_EVERY, offsets::OPPORTUNITY);
    let many = accounts.div_ceil(CONTACTS_MANY_EVERY);
    BTreeMap::from([
        ("Account", accounts),
        ("AccountFeed", periodic(accounts, FEED_EVERY, offsets::FEED)),
        ("AccountHistory", periodic(accounts, HISTORY_EVERY, offsets::HISTORY)),
        ("Attachment", periodic(accounts, ATTACHMENT_EVERY, offsets::ATTACHMENT)),
        ("Campaign", CAMPAIGNS_BASE + accounts / ACCOUNTS_PER_EXTRA_CAMPAIGN),
        ("CampaignMember", periodic(accounts, CAMPAIGN_MEMBER_EVERY, offsets::CAMPAIGN_MEMBER)),
        ("Case", periodic(accounts, CASE_EVERY, offsets::CASE)),
        ("Contact", many * CONTACTS_MANY + (accounts - many) * CONTACTS_FEW),
        ("Invoice__c", periodic(accounts, INVOICE_EVERY, offsets::INVOICE)),
        ("Lead", periodic(accounts, LEAD_EVERY, offsets::LEAD)),
        ("Opportunity", opportunities),
        ("OpportunityLineItem", opportunities * LINE_ITEMS_PER_OPPORTUNITY),
        ("Subscription__c", periodic(accounts, SUBSCRIPTION_EVERY, offsets::SUBSCRIPTION)),
        ("Task", periodic(accounts, TASK_EVERY, offsets::TASK)),
        ("User", USERS_BASE + accounts / ACCOUNTS_PER_EXTRA_USER),
        ("UserLicense", 3),
    ])
}

/// Fills `org` (a fresh org over [`crate::catalog::standard_objects`]) with generated records
/// and makes the first generated User the integration user.
pub fn generate(org: &mut Org, spec: &GenerateSpec) -> GenerateSummary {
    let keep_log = org.keep_change_log;
    org.keep_change_log = false;
    for (object, n) in expected_counts(spec.accounts) {
        org.reserve(object, n as usize);
    }
    let mut g = Gen::new(org, spec.seed);
    g.run(spec);
    let summary = GenerateSummary { counts: g.counts.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect() };
    org.keep_change_log = keep_log;
    tracing::info!(accounts = spec.accounts, records = summary.total(), "generated org data");
    summary
}

const DAY_MS: i64 = 86_400_000;
const HISTORY_DAYS: i64 = 3 * 365;

/// Generation state: the RNG, the org clock's now, and ids later records point to.
pub(crate) struct Gen<'o> {
    pub(crate) org: &'o mut Org,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) now: i64,
    pub(crate) users: Vec<String>,
    pub(crate) campaigns: Vec<String>,
    pub(crate) counts: BTreeMap<&'static str, u64>,
    pub(crate) slots: Option<slots::AllSlots>,
    /// Change rounds create records "now" instead of back-dating them.
    pub(crate) fresh: bool,
}

/// A record being built: `(slot, value)` pairs handed to the org in one piece.
pub(crate) struct Rec(pub(crate) Vec<(Slot, Value)>);

impl Rec {
    pub(crate) fn with_capacity(n: usize) -> Rec {
        Rec(Vec::with_capacity(n + 7))
    }

    pub(crate) fn s(&mut self, slot: Slot, v: impl Into<String>) -> &mut Self {
        self.0.push((slot, Value::Str(v.into())));
        self
    }

    pub(crate) fn v(&mut self, slot: Slot, v: Value) -> &mut Self {
        self.0.push((slot, v));
        self
    }

    pub(crate) fn b(&mut self, slot: Slot, v: bool) -> &mut Self {
        self.v(slot, Value::Bool(v))
    }

    pub(crate) fn d(&mut self, slot: Slot, v: f64) -> &mut Self {
        self.v(slot, Value::Double(v))
    }

    pub(crate) fn i(&mut self, slot: Slot, v: i64) -> &mut Self {
        self.v(slot, Value::Int(v))
    }

    pub(crate) fn date(&mut self, slot: Slot, millis: i64) -> &mut Self {
        self.v(slot, Value::Date(millis.div_euclid(DAY_MS) as i32))
    }

    pub(crate) fn dt(&mut self, slot: Slot, millis: i64) -> &mut Self {
        self.v(slot, Value::DateTime(millis))
    }
}

impl<'o> Gen<'o> {
    fn new(org: &'o mut Org, seed: u64) -> Gen<'o> {
        let now = org.stamp_millis();
        Gen {
            org,
            rng: ChaCha8Rng::seed_from_u64(seed),
            now,
            users: Vec::new(),
            campaigns: Vec::new(),
            counts: BTreeMap::new(),
            slots: None,
            fresh: false,
        }
    }

    /// A generator for change rounds: new records are stamped now, and owners and campaigns
    /// are drawn from the org's live users and campaigns.
    pub(crate) fn for_changes(org: &'o mut Org, seed: u64) -> Gen<'o> {
        let live_ids = |org: &Org, object: &str| -> Vec<String> {
            org.table(object)
                .map(|t| t.rows().iter().filter(|r| !t.is_deleted(r)).map(|r| t.id_of(r).as_str().to_owned()).collect())
                .unwrap_or_default()
        };
        let mut users = live_ids(org, "User");
        if users.is_empty() {
            users.push(org.integration_user.as_str().to_owned());
        }
        let campaigns = live_ids(org, "Campaign");
        let mut g = Gen::new(org, seed);
        g.users = users;
        g.campaigns = campaigns;
        g.fresh = true;
        g
    }

    /// Inserts a record with back-dated audit fields; returns its id as a string.
    pub(crate) fn insert(&mut self, object: &'static str, rec: Rec, created: i64, modified: i64) -> String {
        let id = self
            .org
            .insert_record_at(object, rec.0, created, modified)
            .unwrap_or_else(|e| panic!("catalog object {object} accepts generated records: {e}"));
        *self.counts.entry(object).or_default() += 1;
        id.as_str().to_owned()
    }

    /// `(created, modified)` with `not_before ≤ created ≤ modified ≤ now`; half the records
    /// were never modified after creation.
    pub(crate) fn history(&mut self, not_before: i64) -> (i64, i64) {
        if self.fresh {
            return (self.now, self.now);
        }
        let start = not_before.max(self.now - HISTORY_DAYS * DAY_MS);
        let created = if start >= self.now { self.now } else { self.rng.random_range(start..=self.now) };
        let created = self.stamp(created);
        let modified = if self.rng.random_bool(0.5) || created >= self.now {
            created
        } else {
            let m = self.rng.random_range(created..=self.now);
            self.stamp(m).max(created)
        };
        (created, modified)
    }

    /// A generated system datetime as the org would have stamped it (see [`Org::stamp_millis`]).
    pub(crate) fn stamp(&self, millis: i64) -> i64 {
        if self.org.millisecond_stamps { millis } else { millis - millis.rem_euclid(1000) }
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())]
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    pub(crate) fn owner(&mut self) -> String {
        let i = self.rng.random_range(0..self.users.len());
        self.users[i].clone()
    }

    fn run(&mut self, spec: &GenerateSpec) {
        use ratios::*;
        let expected = expected_counts(spec.accounts);
        // The integration user owns every write, its own record included: it is a real,
        // queryable User whose CreatedById points at itself.
        let user_prefix = self.org.table("User").map(|t| t.def.key_prefix.clone()).unwrap_or_else(|| "005".into());
        self.org.integration_user = self.org.peek_next_id(&user_prefix);
        for i in 0..expected["User"] {
            let id = self.user(i, &spec.username);
            self.users.push(id);
        }
        self.user_licenses();
        for i in 0..expected["Campaign"] {
            let id = self.campaign(i);
            self.campaigns.push(id);
        }
        let is = |i: u64, every: u64, offset: u64| i % every == offset;
        for i in 0..spec.accounts {
            let account = self.account(i);
            let n_contacts = if i % CONTACTS_MANY_EVERY == 0 { CONTACTS_MANY } else { CONTACTS_FEW };
            let mut contacts = Vec::with_capacity(n_contacts as usize);
            for _ in 0..n_contacts {
                contacts.push(self.contact(&account));
            }
            let opportunity = is(i, OPPORTUNITY_EVERY, offsets::OPPORTUNITY).then(|| {
                let opp = self.opportunity(&account);
                for n in 0..LINE_ITEMS_PER_OPPORTUNITY {
                    self.line_item(&opp, n);
                }
                opp
            });
            let case = is(i, CASE_EVERY, offsets::CASE).then(|| self.case(&account, &contacts[0], i / CASE_EVERY));
            if is(i, TASK_EVERY, offsets::TASK) {
                self.task(&account, &contacts, opportunity.as_ref(), case.as_ref());
            }
            if is(i, INVOICE_EVERY, offsets::INVOICE) {
                self.invoice(&account, i / INVOICE_EVERY);
            }
            if is(i, SUBSCRIPTION_EVERY, offsets::SUBSCRIPTION) {
                self.subscription(&account, i / SUBSCRIPTION_EVERY);
            }
            if is(i, CAMPAIGN_MEMBER_EVERY, offsets::CAMPAIGN_MEMBER) {
                self.campaign_member(&contacts[0]);
            }
            if is(i, FEED_EVERY, offsets::FEED) {
                self.account_feed(&account);
            }
            if is(i, HISTORY_EVERY, offsets::HISTORY) {
                self.account_history(&account);
            }
            if is(i, ATTACHMENT_EVERY, offsets::ATTACHMENT) {
                self.attachment(&account, i / ATTACHMENT_EVERY);
            }
            if is(i, LEAD_EVERY, offsets::LEAD) {
                self.lead();
            }
        }
    }
}

/// Parents children need to know about.
pub(crate) struct AccountInfo {
    pub id: String,
    pub name: String,
    pub created: i64,
    pub domain: String,
    pub city: names::City,
    pub street: String,
    pub phone: String,
}

pub(crate) struct ContactInfo {
    pub id: String,
    pub name: String,
    pub created: i64,
}

pub(crate) struct OpportunityInfo {
    pub id: String,
    pub name: String,
    pub created: i64,
    pub close_date: i64,
}

pub(crate) struct CaseInfo {
    pub id: String,
    pub created: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_counts_follow_the_ratios() {
        let c = expected_counts(100);
        assert_eq!(c["Contact"], 125);
        assert_eq!(c["Opportunity"], 50);
        assert_eq!(c["OpportunityLineItem"], 50);
        assert_eq!(c["Case"], 25);
        assert_eq!(c["Lead"], 25);
        assert_eq!(c["Subscription__c"], 12);
        assert_eq!(c["AccountHistory"], 5);
        assert_eq!(periodic(3, 4, 3), 0);
        assert_eq!(periodic(4, 4, 3), 1);
    }
}
