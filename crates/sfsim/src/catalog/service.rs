//! Service and platform objects: Case, Task, User, UserLicense, Attachment.

use tidemark_core::FieldType;

use super::*;
use crate::schema::{Formula, ObjectDef, ObjectFlags};

pub(crate) const CASE_STATUSES: [&str; 4] = ["New", "Working", "Escalated", "Closed"];
pub(crate) const CASE_ORIGINS: [&str; 3] = ["Phone", "Email", "Web"];
pub(crate) const CASE_TYPES: [&str; 5] = ["Mechanical", "Electrical", "Electronic", "Structural", "Other"];
pub(crate) const CASE_REASONS: [&str; 7] =
    ["Installation", "Equipment Complexity", "Performance", "Breakdown", "Equipment Design", "Feedback", "Other"];
pub(crate) const PRIORITIES: [&str; 3] = ["High", "Medium", "Low"];
pub(crate) const TASK_SUBJECTS: [&str; 5] = ["Call", "Email", "Send Letter", "Send Quote", "Other"];
pub(crate) const TASK_STATUSES: [&str; 5] = ["Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"];
pub(crate) const TASK_PRIORITIES: [&str; 3] = ["High", "Normal", "Low"];
pub(crate) const TIME_ZONES: [&str; 5] =
    ["America/Los_Angeles", "America/New_York", "America/Chicago", "Europe/London", "Europe/Berlin"];
pub(crate) const LOCALES: [&str; 4] = ["en_US", "en_GB", "de_DE", "fr_FR"];
pub(crate) const LANGUAGES: [&str; 4] = ["en_US", "de", "fr", "ja"];

pub fn case() -> ObjectDef {
    let mut o = object("Case", "Case", "Cases", "500");
    o.flags.feed_enabled = true;
    o.add_field(system(lookup("MasterRecordId", "Master Record ID", &["Case"])));
    let mut case_number = text("CaseNumber", "Case Number", 30).auto_number().name_field();
    case_number.groupable = false;
    o.add_field(case_number);
    o.add_field(lookup("ContactId", "Contact ID", &["Contact"]));
    o.add_field(lookup("AccountId", "Account ID", &["Account"]));
    o.add_field(lookup("ParentId", "Parent Case ID", &["Case"]));
    o.add_field(text("SuppliedName", "Name", 80));
    o.add_field(field("SuppliedEmail", FieldType::Email, "Email").length(80));
    o.add_field(text("SuppliedPhone", "Phone", 40));
    o.add_field(text("SuppliedCompany", "Company", 80));
    o.add_field(picklist("Type", "Case Type", &CASE_TYPES, false));
    let mut status = picklist("Status", "Status", &CASE_STATUSES, false);
    status.defaulted_on_create = true;
    if let Some(first) = status.picklist_values.first_mut() {
        first.default_value = true;
    }
    o.add_field(status);
    o.add_field(picklist("Reason", "Case Reason", &CASE_REASONS, false));
    o.add_field(picklist("Origin", "Case Origin", &CASE_ORIGINS, false));
    o.add_field(text("Subject", "Subject", 255));
    o.add_field(picklist("Priority", "Priority", &PRIORITIES, false));
    o.add_field(long_textarea("Description", "Description", 32000));
    let mut closed = checkbox("IsClosed", "Closed", false);
    closed.createable = false;
    closed.updateable = false;
    o.add_field(closed);
    o.add_field(system(field("ClosedDate", FieldType::Datetime, "Closed Date")));
    o.add_field(checkbox("IsEscalated", "Escalated", false));
    o.add_field(owner());
    o.add_field(
        number("Days_Open__c", FieldType::Double, "Days Open", 18, 0).formula(Formula::DaysSince { field: "CreatedDate".into() }),
    );
    add_recently_viewed(&mut o);
    move_audit_after(&mut o, "OwnerId");
    o
}

pub fn task() -> ObjectDef {
    let mut o = object("Task", "Task", "Tasks", "00T");
    o.add_field(lookup("WhoId", "Name ID", &["Contact", "Lead"]));
    o.add_field(lookup(
        "WhatId",
        "Related To ID",
        &["Account", "Opportunity", "Case", "Campaign", "Invoice__c", "Subscription__c"],
    ));
    o.add_field(field("Subject", FieldType::Combobox, "Subject").picklist(&TASK_SUBJECTS, false));
    o.add_field(field("ActivityDate", FieldType::Date, "Due Date Only"));
    let mut status = picklist("Status", "Status", &TASK_STATUSES, false).required();
    status.defaulted_on_create = true;
    if let Some(first) = status.picklist_values.first_mut() {
        first.default_value = true;
    }
    o.add_field(status);
    let mut priority = picklist("Priority", "Priority", &TASK_PRIORITIES, false).required();
    priority.defaulted_on_create = true;
    if let Some(normal) = priority.picklist_values.get_mut(1) {
        normal.default_value = true;
    }
    o.add_field(priority);
    let mut high = checkbox("IsHighPriority", "High Priority", false);
    high.createable = false;
    high.updateable = false;
    o.add_field(high);
    o.add_field(owner());
    o.add_field(long_textarea("Description", "Description", 32000));
    let mut closed = checkbox("IsClosed", "Closed", false);
    closed.createable = false;
    closed.updateable = false;
    o.add_field(closed);
    o.add_field(system(lookup("AccountId", "Account ID", &["Account"])));
    o.add_field(field("CallDurationInSeconds", FieldType::Int, "Call Duration"));
    o.add_field(picklist("CallType", "Call Type", &["Internal", "Inbound", "Outbound"], false));
    o.add_field(checkbox("IsReminderSet", "Reminder Set", false));
    o.add_field(field("ReminderDateTime", FieldType::Datetime, "Reminder Date/Time"));
    o.add_field(picklist("TaskSubtype", "Task Subtype", &["Task", "Email", "Call"], true).create_only());
    move_audit_after(&mut o, "OwnerId");
    o
}

pub fn user() -> ObjectDef {
    let mut o = object("User", "User", "Users", "005");
    o.flags.deletable = false;
    o.flags.undeletable = false;
    o.flags.feed_enabled = true;
    o.add_field(text("Username", "Username", 80).required().unique());
    o.add_field(text("LastName", "Last Name", 80).required());
    o.add_field(text("FirstName", "First Name", 40));
    o.add_field(system(text("Name", "Full Name", 121).name_field().no_id_lookup().extra_type_info("personname")));
    o.add_field(text("CompanyName", "Company Name", 80));
    o.add_field(text("Division", "Division", 80));
    o.add_field(text("Department", "Department", 80));
    o.add_field(text("Title", "Title", 80));
    o.add_field(field("Email", FieldType::Email, "Email").length(128).required());
    o.add_field(field("Phone", FieldType::Phone, "Phone"));
    o.add_field(field("MobilePhone", FieldType::Phone, "Mobile"));
    o.add_field(text("Alias", "Alias", 8).required());
    o.add_field(text("CommunityNickname", "Nickname", 40).required().unique());
    let mut active = checkbox("IsActive", "Active", true);
    active.defaulted_on_create = true;
    o.add_field(active);
    o.add_field(picklist("TimeZoneSidKey", "Time Zone", &TIME_ZONES, true).required());
    o.add_field(picklist("LocaleSidKey", "Locale", &LOCALES, true).required());
    o.add_field(picklist("EmailEncodingKey", "Email Encoding", &["UTF-8", "ISO-8859-1"], true).required());
    o.add_field(picklist("LanguageLocaleKey", "Language", &LANGUAGES, true).required());
    o.add_field(lookup("ManagerId", "Manager ID", &["User"]));
    o.add_field(system(picklist("UserType", "User Type", &["Standard", "PowerPartner", "CsnOnly", "Guest"], true)));
    o.add_field(system(field("LastLoginDate", FieldType::Datetime, "Last Login")));
    o.add_field(text("FederationIdentifier", "SAML Federation ID", 512));
    add_recently_viewed(&mut o);
    o
}

/// `UserLicense`: queryable and retrievable, but not replicateable (getUpdated refuses it).
pub fn user_license() -> ObjectDef {
    let mut o = object("UserLicense", "User License", "User Licenses", "100");
    o.flags = read_only_flags(false);
    o.add_field(system(text("LicenseDefinitionKey", "License Definition Key", 40)).required());
    o.add_field(system(text("Name", "Name", 40).name_field().no_id_lookup()).required());
    o.add_field(system(text("MasterLabel", "Master Label", 80)).required());
    o.add_field(system(picklist("Status", "Status", &["Active", "Disabled"], true)).required());
    o.add_field(system(field("TotalLicenses", FieldType::Int, "Total Licenses")).required());
    o.add_field(system(field("UsedLicenses", FieldType::Int, "Used Licenses")).required());
    o
}

/// `Attachment`: a file on a record; `Body` is the one base64 field of the catalog.
pub fn attachment() -> ObjectDef {
    let mut o = object("Attachment", "Attachment", "Attachments", "00P");
    o.flags = ObjectFlags { searchable: false, layoutable: false, pk_chunking_supported: false, ..ObjectFlags::default() };
    o.add_field(
        lookup("ParentId", "Parent ID", &["Account", "Contact", "Opportunity", "Case", "Invoice__c"]).required().create_only(),
    );
    o.add_field(text("Name", "File Name", 255).required().name_field().no_id_lookup());
    o.add_field(checkbox("IsPrivate", "Private", false));
    o.add_field(text("ContentType", "Content Type", 120));
    o.add_field(system(field("BodyLength", FieldType::Int, "Body Length")));
    o.add_field(field("Body", FieldType::Base64, "Body").required());
    o.add_field(owner());
    o.add_field(long_textarea("Description", "Description", 500));
    o
}
