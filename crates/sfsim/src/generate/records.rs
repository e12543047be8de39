//! One builder per object. Slots are resolved once per object (not per record) through the
//! `slots!` structs, so generating a record costs its values and one row encoding.

use std::fmt::Write;
use std::sync::OnceLock;

use rand::Rng;

use super::names::*;
use super::slots::*;
use super::{AccountInfo, CaseInfo, ContactInfo, DAY_MS, Gen, OpportunityInfo, Rec};
use crate::catalog::consts::*;

fn slug(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

/// A small, valid PDF-looking payload for attachments, base64-encoded once.
fn attachment_body() -> &'static (String, i64) {
    static BODY: OnceLock<(String, i64)> = OnceLock::new();
    BODY.get_or_init(|| {
        use base64::Engine;
        let raw = b"%PDF-1.4\n% Tidemark simulator attachment\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";
        (base64::engine::general_purpose::STANDARD.encode(raw), raw.len() as i64)
    })
}

impl Gen<'_> {
    fn slots(&mut self) -> &AllSlots {
        if self.slots.is_none() {
            self.slots = Some(AllSlots::resolve(self.org));
        }
        self.slots.as_ref().expect("just resolved")
    }

    fn person(&mut self) -> (&'static str, &'static str) {
        (self.pick(&FIRST_NAMES), self.pick(&LAST_NAMES))
    }

    fn phone(&mut self) -> String {
        let area = self.rng.random_range(201..990);
        let line = self.rng.random_range(100..10_000);
        format!("({area}) 555-{line:04}")
    }

    fn street(&mut self) -> String {
        let n = self.rng.random_range(1..9_000);
        format!("{n} {} {}", self.pick(&STREET_NAMES), self.pick(&STREET_KINDS))
    }

    fn postal(&mut self, city: &City) -> String {
        if city.5 == "US" {
            format!("{}{:02}", city.3, self.rng.random_range(0..100))
        } else {
            format!("{} {}", city.3.trim_end(), self.rng.random_range(1..10))
        }
    }

    fn jitter(&mut self) -> f64 {
        (self.rng.random_range(-50_000..50_000) as f64) / 1_000_000.0
    }

    pub(crate) fn user(&mut self, i: u64, integration_username: &str) -> String {
        let s = self.slots().user;
        let (first, last) = if i == 0 { ("Integration", "User") } else { self.person() };
        let username = if i == 0 {
            integration_username.to_owned()
        } else {
            format!("{}.{}{i}@tidemark-sim.example", slug(first), slug(last))
        };
        let mut r = Rec::with_capacity(19);
        r.s(s.Username, username.clone())
            .s(s.LastName, last)
            .s(s.FirstName, first)
            .s(s.Name, format!("{first} {last}"))
            .s(s.CompanyName, "Tidemark Simulated Org")
            .s(s.Email, username)
            .s(s.Alias, format!("{}{}", &first[..1].to_ascii_lowercase(), slug(last).chars().take(4).collect::<String>()))
            .s(s.CommunityNickname, format!("{}.{}{i}", slug(first), slug(last)))
            .b(s.IsActive, true)
            .s(s.TimeZoneSidKey, TIME_ZONES[(i % TIME_ZONES.len() as u64) as usize])
            .s(s.LocaleSidKey, "en_US")
            .s(s.EmailEncodingKey, "UTF-8")
            .s(s.LanguageLocaleKey, "en_US")
            .s(s.UserType, "Standard");
        if i > 0 {
            let title = self.pick(&TITLES);
            let dept = self.pick(&DEPARTMENTS);
            r.s(s.Title, title).s(s.Department, dept).s(s.Phone, self.phone());
            if let Some(manager) = self.users.first() {
                r.s(s.ManagerId, manager.clone());
            }
        }
        let (created, modified) = self.history(0);
        let login = self.rng.random_range(modified..=self.now);
        r.dt(s.LastLoginDate, self.stamp(login));
        self.insert("User", r, created, modified)
    }

    pub(crate) fn user_licenses(&mut self) {
        let s = self.slots().license;
        let users = self.users.len() as i64;
        for (key, name, total, used) in [
            ("SFDC", "Salesforce", users + 20, users),
            ("AUL", "Salesforce Platform", 10, 0),
            ("PID_Chatter", "Chatter Free", 5000, 0),
        ] {
            let mut r = Rec::with_capacity(6);
            r.s(s.LicenseDefinitionKey, key)
                .s(s.Name, name)
                .s(s.MasterLabel, name)
                .s(s.Status, "Active")
                .i(s.TotalLicenses, total)
                .i(s.UsedLicenses, used);
            let (created, _) = self.history(0);
            self.insert("UserLicense", r, created, created);
        }
    }

    pub(crate) fn campaign(&mut self, i: u64) -> String {
        let s = self.slots().campaign;
        let kind = self.pick(&CAMPAIGN_TYPES);
        let (created, modified) = self.history(0);
        let start = created + self.rng.random_range(0..60) * DAY_MS;
        let status = if start > self.now { "Planned" } else { self.pick(&CAMPAIGN_STATUSES[1..]) };
        let budget = self.rng.random_range(5..200) as f64 * 1000.0;
        let mut r = Rec::with_capacity(14);
        r.s(s.Name, format!("{} {} {}", self.pick(&COMPANY_WORDS), kind, 2022 + (i % 4)))
            .s(s.Type, kind)
            .s(s.Status, status)
            .date(s.StartDate, start)
            .date(s.EndDate, start + self.rng.random_range(7..120) * DAY_MS)
            .d(s.BudgetedCost, budget)
            .d(s.ActualCost, (budget * self.rng.random_range(0.5..1.2)).round())
            .d(s.ExpectedRevenue, budget * self.rng.random_range(2..10) as f64)
            .d(s.ExpectedResponse, self.rng.random_range(1..25) as f64)
            .d(s.NumberSent, self.rng.random_range(100..20_000) as f64)
            .b(s.IsActive, status == "In Progress")
            .i(s.NumberOfLeads, 0)
            .i(s.NumberOfContacts, 0)
            .s(s.OwnerId, self.owner());
        self.insert("Campaign", r, created, modified)
    }

    pub(crate) fn account(&mut self, i: u64) -> AccountInfo {
        let s = self.slots().account;
        let name = match self.rng.random_range(0..3) {
            0 => format!("{} {}", self.pick(&COMPANY_WORDS), self.pick(&COMPANY_NOUNS)),
            1 => {
                format!("{} {} {}", self.pick(&COMPANY_WORDS), self.pick(&COMPANY_NOUNS), self.pick(&COMPANY_SUFFIXES))
            }
            _ => format!("{} {}", self.pick(&LAST_NAMES), self.pick(&COMPANY_NOUNS)),
        };
        let domain = format!("{}{}.com", slug(&name), i % 100);
        let city = self.pick(&CITIES);
        let street = self.street();
        let phone = self.phone();
        let (created, modified) = self.history(0);
        let mut r = Rec::with_capacity(30);
        r.s(s.Name, name.clone())
            .s(s.Type, self.pick(&ACCOUNT_TYPES))
            .s(s.Industry, self.pick(&INDUSTRIES))
            .s(s.BillingStreet, street.clone())
            .s(s.BillingCity, city.0)
            .s(s.BillingPostalCode, self.postal(&city))
            .s(s.BillingCountry, city.4)
            .s(s.Phone, phone.clone())
            .s(s.OwnerId, self.owner())
            .b(s.IsPartner, false)
            .b(s.IsCustomerPortal, false);
        if !city.1.is_empty() {
            r.s(s.BillingState, city.1);
        }
        if self.chance(0.5) {
            r.s(s.Website, format!("https://www.{domain}"));
        }
        if self.chance(0.7) {
            r.d(s.AnnualRevenue, (self.rng.random_range(1..5_000) * 100_000) as f64);
            r.i(s.NumberOfEmployees, self.rng.random_range(1..20_000));
        }
        if self.chance(0.2) {
            r.s(s.ShippingStreet, street.clone()).s(s.ShippingCity, city.0).s(s.ShippingCountry, city.4);
            let postal = self.postal(&city);
            r.s(s.ShippingPostalCode, postal);
            if !city.1.is_empty() {
                r.s(s.ShippingState, city.1);
            }
        }
        if self.chance(0.6) {
            r.s(s.Rating, self.pick(&RATINGS));
        }
        if self.chance(0.5) {
            r.d(s.BillingLatitude, city.6 + self.jitter())
                .d(s.BillingLongitude, city.7 + self.jitter())
                .s(s.BillingGeocodeAccuracy, self.pick(&["Address", "Street", "Zip"]));
        }
        if self.chance(0.7) {
            r.s(s.AccountSource, self.pick(&SOURCES));
        }
        if self.chance(0.5) {
            r.s(s.AccountNumber, format!("CD{:06}", self.rng.random_range(0..1_000_000)));
            r.s(s.Ownership, self.pick(&["Public", "Private", "Subsidiary", "Other"]));
        }
        if self.chance(0.1) {
            r.s(s.Description, self.pick(&DESCRIPTIONS));
            r.s(s.Fax, self.phone());
        }
        if self.chance(0.05) {
            let ticker: String = slug(&name).chars().take(4).collect::<String>().to_ascii_uppercase();
            r.s(s.TickerSymbol, ticker).s(s.YearStarted, self.rng.random_range(1950..2020).to_string());
        }
        if self.chance(0.1) {
            r.s(s.CleanStatus, self.pick(&["Matched", "Pending", "Skipped"]));
        }
        if i > 10 && self.chance(0.05) {
            // A parent among the accounts generated so far (same id space, earlier counter).
            let parent = self.org.table("Account").and_then(|t| {
                let n = t.len();
                (n > 0).then(|| t.id_of(&t.rows()[self.rng.random_range(0..n)]).as_str().to_owned())
            });
            if let Some(parent) = parent {
                r.s(s.ParentId, parent);
            }
        }
        let id = self.insert("Account", r, created, modified);
        AccountInfo { id, name, created, domain, city, street, phone }
    }

    pub(crate) fn contact(&mut self, account: &AccountInfo) -> ContactInfo {
        let s = self.slots().contact;
        let (first, last) = self.person();
        let name = format!("{first} {last}");
        let (created, modified) = self.history(account.created);
        let mut email = String::with_capacity(40);
        let _ = write!(email, "{}.{}@{}", slug(first), slug(last), account.domain);
        let mut r = Rec::with_capacity(24);
        r.s(s.AccountId, account.id.clone())
            .s(s.FirstName, first)
            .s(s.LastName, last)
            .s(s.Name, name.clone())
            .s(s.Email, email)
            .s(s.OwnerId, self.owner())
            .b(s.HasOptedOutOfEmail, self.chance(0.05))
            .b(s.DoNotCall, false);
        if self.chance(0.6) {
            r.s(s.Salutation, self.pick(&SALUTATIONS));
        }
        if self.chance(0.7) {
            r.s(s.Phone, account.phone.clone()).s(s.Title, self.pick(&TITLES));
        }
        if self.chance(0.35) {
            let city = account.city;
            r.s(s.MailingStreet, account.street.clone())
                .s(s.MailingCity, city.0)
                .s(s.MailingPostalCode, self.postal(&city))
                .s(s.MailingCountry, city.4)
                .d(s.MailingLatitude, city.6 + self.jitter())
                .d(s.MailingLongitude, city.7 + self.jitter());
            if !city.1.is_empty() {
                r.s(s.MailingState, city.1);
            }
        }
        if self.chance(0.4) {
            r.s(s.MobilePhone, self.phone()).s(s.Department, self.pick(&DEPARTMENTS));
        }
        if self.chance(0.5) {
            r.s(s.LeadSource, self.pick(&SOURCES)).s(s.Level__c, self.pick(&CONTACT_LEVELS));
        }
        if self.chance(0.3) {
            let born = self.now - self.rng.random_range(22 * 365..65 * 365) * DAY_MS;
            r.date(s.Birthdate, born);
        }
        if self.chance(0.1) {
            r.s(s.Languages__c, self.pick(&["English", "English;Spanish", "German", "French", "Japanese"]));
            r.s(s.Description, self.pick(&TASK_NOTES));
        }
        if self.chance(0.2) {
            let minutes = self.rng.random_range(16..36) * 30;
            r.v(s.Preferred_Call_Time__c, crate::value::Value::Time(minutes * 60_000));
        }
        if self.chance(0.1) {
            r.s(
                s.Tax_Id__c,
                format!(
                    "{:03}-{:02}-{:04}",
                    self.rng.random_range(100..900),
                    self.rng.random_range(10..99),
                    self.rng.random_range(1000..9999)
                ),
            );
        }
        let id = self.insert("Contact", r, created, modified);
        ContactInfo { id, name, created }
    }
}

impl Gen<'_> {
    pub(crate) fn lead(&mut self) -> String {
        let s = self.slots().lead;
        let (first, last) = self.person();
        let company = format!("{} {}", self.pick(&COMPANY_WORDS), self.pick(&COMPANY_NOUNS));
        let status = self.pick(&LEAD_STATUSES);
        let (created, modified) = self.history(0);
        let city = self.pick(&CITIES);
        let mut r = Rec::with_capacity(24);
        r.s(s.FirstName, first)
            .s(s.LastName, last)
            .s(s.Name, format!("{first} {last}"))
            .s(s.Email, format!("{}.{}@{}.com", slug(first), slug(last), slug(&company)))
            .s(s.Company, company)
            .s(s.Status, status)
            .s(s.Phone, self.phone())
            .s(s.City, city.0)
            .s(s.Country, city.4)
            .s(s.OwnerId, self.owner())
            .b(s.HasOptedOutOfEmail, false)
            .b(s.IsConverted, status == "Closed - Converted")
            .b(s.IsUnreadByOwner, self.chance(0.3));
        if status == "Closed - Converted" {
            r.date(s.ConvertedDate, modified);
        }
        if self.chance(0.5) {
            r.s(s.Title, self.pick(&TITLES)).s(s.LeadSource, self.pick(&SOURCES)).s(s.Industry, self.pick(&INDUSTRIES));
        }
        if self.chance(0.4) {
            r.s(s.Street, self.street())
                .s(s.PostalCode, self.postal(&city))
                .d(s.Latitude, city.6 + self.jitter())
                .d(s.Longitude, city.7 + self.jitter());
            if !city.1.is_empty() {
                r.s(s.State, city.1);
            }
        }
        if self.chance(0.3) {
            r.s(s.Rating, self.pick(&RATINGS))
                .d(s.AnnualRevenue, (self.rng.random_range(1..500) * 100_000) as f64)
                .i(s.NumberOfEmployees, self.rng.random_range(1..5_000));
        }
        if self.chance(0.4) {
            let a = self.pick(&PRODUCT_INTERESTS);
            let b = self.pick(&PRODUCT_INTERESTS);
            let v = if a == b { a.to_owned() } else { format!("{a};{b}") };
            r.s(s.Product_Interest__c, v);
        }
        if self.chance(0.1) {
            r.s(s.Salutation, self.pick(&SALUTATIONS)).s(s.Website, "https://www.example.com");
        }
        self.insert("Lead", r, created, modified)
    }

    pub(crate) fn opportunity(&mut self, account: &AccountInfo) -> OpportunityInfo {
        let s = self.slots().opportunity;
        let (stage, probability) = self.pick(&STAGES);
        let (created, modified) = self.history(account.created);
        let closed = stage.starts_with("Closed");
        let close_date = if closed {
            self.rng.random_range(created..=modified.max(created + DAY_MS))
        } else {
            self.now + self.rng.random_range(1..180) * DAY_MS
        };
        let name = format!("{} - {}", account.name, self.pick(&DEAL_KINDS));
        let close = crate::value::millis_to_datetime(close_date);
        let (year, quarter) = {
            use chrono::Datelike;
            (close.year() as i64, (close.month0() / 3 + 1) as i64)
        };
        let forecast = match (stage, probability) {
            ("Closed Won", _) => "Closed",
            ("Closed Lost", _) => "Omitted",
            (_, p) if p >= 70 => "Forecast",
            (_, p) if p >= 50 => "BestCase",
            _ => "Pipeline",
        };
        let mut r = Rec::with_capacity(18);
        r.s(s.AccountId, account.id.clone())
            .s(s.Name, name.clone())
            .s(s.StageName, stage)
            .d(s.Amount, (self.rng.random_range(10..2_000) * 500) as f64)
            .d(s.Probability, probability as f64)
            .date(s.CloseDate, close_date)
            .s(s.Type, self.pick(&OPPORTUNITY_TYPES))
            .b(s.IsClosed, closed)
            .b(s.IsWon, stage == "Closed Won")
            .s(s.ForecastCategory, forecast)
            .b(s.HasOpportunityLineItem, true)
            .s(s.OwnerId, self.owner())
            .i(s.FiscalYear, year)
            .i(s.FiscalQuarter, quarter)
            .s(s.Fiscal, format!("{year} {quarter}"));
        if self.chance(0.4) {
            r.s(s.LeadSource, self.pick(&SOURCES));
        }
        if !closed && self.chance(0.3) {
            r.s(s.NextStep, self.pick(&["Send proposal", "Schedule demo", "Legal review", "Confirm budget"]));
        }
        if !self.campaigns.is_empty() && self.chance(0.2) {
            let c = self.pick_campaign();
            r.s(s.CampaignId, c);
        }
        let id = self.insert("Opportunity", r, created, modified);
        OpportunityInfo { id, name, created, close_date }
    }

    fn pick_campaign(&mut self) -> String {
        let i = self.rng.random_range(0..self.campaigns.len());
        self.campaigns[i].clone()
    }

    pub(crate) fn line_item(&mut self, opp: &OpportunityInfo, n: u64) -> String {
        let s = self.slots().line_item;
        let (product, code, list) = self.pick(&PRODUCTS);
        let (created, modified) = self.history(opp.created);
        let mut r = Rec::with_capacity(10);
        r.s(s.OpportunityId, opp.id.clone())
            .s(s.Name, format!("{} {product}", opp.name))
            .s(s.ProductCode, code)
            .d(s.Quantity, self.rng.random_range(1..50) as f64)
            .d(s.UnitPrice, list)
            .d(s.ListPrice, list)
            .i(s.SortOrder, n as i64 + 1);
        if self.chance(0.3) {
            r.d(s.Discount, self.rng.random_range(1..30) as f64);
        }
        if self.chance(0.5) {
            r.date(s.ServiceDate, opp.close_date);
        }
        self.insert("OpportunityLineItem", r, created, modified)
    }

    pub(crate) fn case(&mut self, account: &AccountInfo, contact: &ContactInfo, i: u64) -> CaseInfo {
        let s = self.slots().case;
        let status = self.pick(&CASE_STATUSES);
        let origin = self.pick(&CASE_ORIGINS);
        let (created, modified) = self.history(contact.created);
        let mut r = Rec::with_capacity(15);
        r.s(s.CaseNumber, format!("{:08}", 1000 + i))
            .s(s.AccountId, account.id.clone())
            .s(s.ContactId, contact.id.clone())
            .s(s.Status, status)
            .s(s.Origin, origin)
            .s(s.Priority, self.pick(&PRIORITIES))
            .s(s.Subject, self.pick(&CASE_SUBJECTS))
            .b(s.IsClosed, status == "Closed")
            .b(s.IsEscalated, status == "Escalated")
            .s(s.OwnerId, self.owner());
        if status == "Closed" {
            r.dt(s.ClosedDate, modified);
        }
        if self.chance(0.6) {
            r.s(s.Type, self.pick(&CASE_TYPES)).s(s.Reason, self.pick(&CASE_REASONS));
        }
        if origin == "Web" {
            r.s(s.SuppliedEmail, format!("support-{}@{}", i, account.domain));
        }
        if self.chance(0.3) {
            r.s(s.Description, self.pick(&TASK_NOTES));
        }
        let id = self.insert("Case", r, created, modified);
        CaseInfo { id, created }
    }

    pub(crate) fn task(
        &mut self,
        account: &AccountInfo,
        contacts: &[ContactInfo],
        opp: Option<&OpportunityInfo>,
        case: Option<&CaseInfo>,
    ) -> String {
        let s = self.slots().task;
        let who = &contacts[self.rng.random_range(0..contacts.len())];
        let (what, after) = match (self.rng.random_range(0..3), case, opp) {
            (1, _, Some(o)) => (o.id.clone(), o.created),
            (2, Some(c), _) => (c.id.clone(), c.created),
            _ => (account.id.clone(), account.created),
        };
        let (created, modified) = self.history(after.max(who.created));
        let subtype = self.pick(&["Task", "Call", "Email"]);
        let status = self.pick(&TASK_STATUSES);
        let priority = self.pick(&TASK_PRIORITIES);
        let subject = match subtype {
            "Call" => "Call".to_owned(),
            "Email" => format!("Email: {}", self.pick(&DEAL_KINDS)),
            _ if self.chance(0.3) => format!("Follow up with {}", who.name),
            _ => self.pick(&TASK_SUBJECTS).to_owned(),
        };
        let mut r = Rec::with_capacity(15);
        r.s(s.WhoId, who.id.clone())
            .s(s.WhatId, what)
            .s(s.AccountId, account.id.clone())
            .s(s.Subject, subject)
            .date(s.ActivityDate, created + self.rng.random_range(0..30) * DAY_MS)
            .s(s.Status, status)
            .s(s.Priority, priority)
            .b(s.IsHighPriority, priority == "High")
            .b(s.IsClosed, status == "Completed")
            .s(s.OwnerId, self.owner())
            .b(s.IsReminderSet, false)
            .s(s.TaskSubtype, subtype);
        if subtype == "Call" {
            r.s(s.CallType, self.pick(&["Inbound", "Outbound"])).i(s.CallDurationInSeconds, self.rng.random_range(30..3600));
        }
        if self.chance(0.3) {
            r.s(s.Description, self.pick(&TASK_NOTES));
        }
        self.insert("Task", r, created, modified)
    }

    pub(crate) fn invoice(&mut self, account: &AccountInfo, n: u64) -> String {
        let s = self.slots().invoice;
        let (created, modified) = self.history(account.created);
        let status = self.pick(&INVOICE_STATUSES);
        let amount = (self.rng.random_range(100..500_000) as f64) / 4.0;
        let number = format!("INV-{:07}", n + 1);
        let mut r = Rec::with_capacity(23);
        r.s(s.Name, format!("Invoice {number}"))
            .s(s.Invoice_Number__c, number)
            .s(s.OwnerId, self.owner())
            .s(s.Account__c, account.id.clone())
            .d(s.Amount__c, amount)
            .d(s.Tax_Rate__c, self.pick(&[0.0, 7.25, 8.5, 19.0, 20.0]))
            .date(s.Invoice_Date__c, created)
            .date(s.Due_Date__c, created + 30 * DAY_MS)
            .b(s.Paid__c, status == "Paid")
            .s(s.Status__c, status)
            .s(s.Billing_Email__c, format!("billing@{}", account.domain))
            .d(s.Line_Count__c, self.rng.random_range(1..12) as f64);
        if status == "Paid" {
            r.dt(s.Paid_At__c, modified);
        }
        if self.chance(0.3) {
            r.s(s.Payment_Portal__c, format!("https://pay.tidemark-sim.example/i/{}", n + 1));
        }
        if self.chance(0.1) {
            r.s(s.Notes__c, self.pick(&DESCRIPTIONS));
            r.s(s.Terms__c, "<p><strong>Net 30.</strong> Late payments accrue <em>1.5%</em> per month.</p>");
        }
        if self.chance(0.4) {
            let city = account.city;
            r.s(s.Service_Address__Street__s, account.street.clone())
                .s(s.Service_Address__City__s, city.0)
                .s(s.Service_Address__PostalCode__s, self.postal(&city))
                .s(s.Service_Address__CountryCode__s, city.5)
                .d(s.Service_Address__Latitude__s, city.6 + self.jitter())
                .d(s.Service_Address__Longitude__s, city.7 + self.jitter());
            if STATE_CODES.contains(&city.2) {
                r.s(s.Service_Address__StateCode__s, city.2);
            }
        }
        self.insert("Invoice__c", r, created, modified)
    }

    pub(crate) fn subscription(&mut self, account: &AccountInfo, n: u64) -> String {
        let s = self.slots().subscription;
        let (created, modified) = self.history(account.created);
        let plan = self.pick(&PLANS);
        let seats = self.rng.random_range(1..500) as f64;
        let fee = match plan {
            "Starter" => 25.0,
            "Professional" => 75.0,
            _ => 150.0,
        } * seats;
        let mut r = Rec::with_capacity(16);
        r.s(s.Name, format!("SUB-{:06}", n + 1))
            .s(s.Account__c, account.id.clone())
            .s(s.Plan__c, plan)
            .s(s.Status__c, self.pick(&SUBSCRIPTION_STATUSES))
            .d(s.Seats__c, seats)
            .d(s.Monthly_Fee__c, fee)
            .date(s.Start_Date__c, created)
            .date(s.End_Date__c, created + 365 * DAY_MS)
            .b(s.Auto_Renew__c, self.chance(0.7))
            .v(s.Renewal_Time__c, crate::value::Value::Time(self.rng.random_range(0..48) * 30 * 60_000));
        let a = self.pick(&FEATURES);
        let b = self.pick(&FEATURES);
        r.s(s.Features__c, if a == b { a.to_owned() } else { format!("{a};{b}") });
        if self.chance(0.3) {
            r.d(s.Discount__c, self.rng.random_range(5..40) as f64);
        }
        if self.chance(0.5) {
            let city = account.city;
            r.d(s.Site_Location__Latitude__s, ((city.6 + self.jitter()) * 1e5).round() / 1e5)
                .d(s.Site_Location__Longitude__s, ((city.7 + self.jitter()) * 1e5).round() / 1e5);
        }
        if self.chance(0.2) {
            r.s(s.Admin_Token__c, format!("tok_{:016x}", self.rng.random::<u64>()));
        }
        if self.chance(0.1) {
            r.s(s.Notes__c, self.pick(&DESCRIPTIONS));
        }
        self.insert("Subscription__c", r, created, modified)
    }

    pub(crate) fn campaign_member(&mut self, contact: &ContactInfo) {
        let s = self.slots().member;
        let campaign = self.pick_campaign();
        let (created, modified) = self.history(contact.created);
        let responded = self.chance(0.3);
        let mut r = Rec::with_capacity(6);
        r.s(s.CampaignId, campaign)
            .s(s.ContactId, contact.id.clone())
            .s(s.Status, if responded { "Responded" } else { "Sent" })
            .b(s.HasResponded, responded)
            .s(s.Name, contact.name.clone());
        if responded {
            r.date(s.FirstRespondedDate, modified);
        }
        self.insert("CampaignMember", r, created, modified);
    }

    pub(crate) fn account_feed(&mut self, account: &AccountInfo) {
        let s = self.slots().feed;
        let (created, _) = self.history(account.created);
        let link = self.chance(0.3);
        let mut r = Rec::with_capacity(8);
        r.s(s.ParentId, account.id.clone())
            .s(s.Type, if link { "LinkPost" } else { "TextPost" })
            .i(s.CommentCount, self.rng.random_range(0..5))
            .i(s.LikeCount, self.rng.random_range(0..12))
            .s(s.Body, self.pick(&TASK_NOTES))
            .b(s.IsRichText, false);
        if link {
            r.s(s.Title, "Account plan").s(s.LinkUrl, format!("https://www.{}/plan", account.domain));
        }
        self.insert("AccountFeed", r, created, created);
    }

    pub(crate) fn account_history(&mut self, account: &AccountInfo) {
        let s = self.slots().history;
        let (created, _) = self.history(account.created);
        let old = self.pick(&RATINGS);
        let new = self.pick(&RATINGS);
        let mut r = Rec::with_capacity(5);
        r.s(s.AccountId, account.id.clone()).s(s.Field, "Rating").s(s.DataType, "Text").s(s.OldValue, old).s(s.NewValue, new);
        self.insert("AccountHistory", r, created, created);
    }

    pub(crate) fn attachment(&mut self, account: &AccountInfo, n: u64) {
        let s = self.slots().attachment;
        let (created, modified) = self.history(account.created);
        let (body, len) = attachment_body();
        let mut r = Rec::with_capacity(7);
        r.s(s.ParentId, account.id.clone())
            .s(s.Name, format!("contract-{:05}.pdf", n + 1))
            .b(s.IsPrivate, false)
            .s(s.ContentType, "application/pdf")
            .i(s.BodyLength, *len)
            .s(s.Body, body.clone())
            .s(s.OwnerId, self.owner());
        self.insert("Attachment", r, created, modified);
    }
}
