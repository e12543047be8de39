//! The org's custom objects: `Invoice__c` (lookup to Account, external id) and
//! `Subscription__c` (master-detail to Account, auto-number name).

use tidemark_core::FieldType;

use super::*;
use crate::schema::{Formula, ObjectDef};

pub(crate) const INVOICE_STATUSES: [&str; 5] = ["Draft", "Sent", "Paid", "Overdue", "Void"];
pub(crate) const PLANS: [&str; 3] = ["Starter", "Professional", "Enterprise"];
pub(crate) const SUBSCRIPTION_STATUSES: [&str; 4] = ["Trial", "Active", "Cancelled", "Expired"];
pub(crate) const FEATURES: [&str; 5] = ["API Access", "SSO", "Audit Log", "Sandbox", "Premium Support"];

pub fn invoice() -> ObjectDef {
    let mut o = object("Invoice__c", "Invoice", "Invoices", "a00");
    o.add_field(text("Name", "Invoice Name", 80).name_field().defaulted());
    add_recently_viewed(&mut o);
    o.add_field(owner());
    o.add_field(lookup("Account__c", "Account", &["Account"]));
    o.add_field(text("Invoice_Number__c", "Invoice Number", 20).external_id().unique());
    o.add_field(number("Amount__c", FieldType::Currency, "Amount", 16, 2));
    o.add_field(number("Tax_Rate__c", FieldType::Percent, "Tax Rate", 5, 2));
    o.add_field(field("Invoice_Date__c", FieldType::Date, "Invoice Date"));
    o.add_field(field("Due_Date__c", FieldType::Date, "Due Date"));
    o.add_field(checkbox("Paid__c", "Paid", false));
    o.add_field(field("Paid_At__c", FieldType::Datetime, "Paid At"));
    o.add_field(picklist("Status__c", "Status", &INVOICE_STATUSES, true));
    o.add_field(field("Billing_Email__c", FieldType::Email, "Billing Email").length(80));
    o.add_field(field("Payment_Portal__c", FieldType::Url, "Payment Portal"));
    o.add_field(number("Line_Count__c", FieldType::Double, "Line Count", 18, 0));
    o.add_field(long_textarea("Notes__c", "Notes", 32768));
    o.add_field(field("Terms__c", FieldType::Textarea, "Terms").length(32768).html());
    add_custom_address(&mut o, "Service_Address", "Service Address");
    o.add_field(
        text("Account_Industry__c", "Account Industry", 1300)
            .formula(Formula::ParentField { reference_field: "Account__c".into(), parent_field: "Industry".into() }),
    );
    move_audit_after(&mut o, "Name");
    o
}

pub fn subscription() -> ObjectDef {
    let mut o = object("Subscription__c", "Subscription", "Subscriptions", "a01");
    let mut name = text("Name", "Subscription Number", 30).auto_number().name_field();
    name.groupable = false;
    o.add_field(name);
    add_recently_viewed(&mut o);
    o.add_field(field("Account__c", FieldType::Reference, "Account").master_detail("Account", 0));
    o.add_field(picklist("Plan__c", "Plan", &PLANS, true));
    o.add_field(picklist("Status__c", "Status", &SUBSCRIPTION_STATUSES, false));
    o.add_field(number("Seats__c", FieldType::Double, "Seats", 18, 0));
    o.add_field(number("Monthly_Fee__c", FieldType::Currency, "Monthly Fee", 16, 2));
    o.add_field(number("Discount__c", FieldType::Percent, "Discount", 5, 2));
    o.add_field(field("Start_Date__c", FieldType::Date, "Start Date"));
    o.add_field(field("End_Date__c", FieldType::Date, "End Date"));
    o.add_field(checkbox("Auto_Renew__c", "Auto Renew", true));
    o.add_field(field("Renewal_Time__c", FieldType::Time, "Renewal Time"));
    o.add_field(field("Features__c", FieldType::Multipicklist, "Features").length(4099).picklist(&FEATURES, true));
    add_custom_location(&mut o, "Site_Location", "Site Location", 8, 5);
    o.add_field(field("Admin_Token__c", FieldType::Encryptedstring, "Admin Token"));
    o.add_field(long_textarea("Notes__c", "Notes", 32768));
    move_audit_after(&mut o, "Name");
    o
}

/// `Vendor__c`, an object for write tests, not part of the generated org (add it with
/// `Org::add_object`): `Name` required, `Code__c` a unique external id, `Ref__c` an external id
/// that is not unique, `Tier__c` a restricted picklist (Gold, Silver), `Score__c` a number.
pub fn vendor() -> ObjectDef {
    use crate::schema::FieldDef;
    let mut vendor = ObjectDef::new("Vendor__c", "Vendor", "Vendors", "a01");
    vendor.add_system_fields();
    vendor.add_field(FieldDef::new("Name", FieldType::String).label("Vendor Name").required().name_field().length(80));
    vendor.add_field(FieldDef::new("Code__c", FieldType::String).label("Vendor Code").length(20).external_id().unique());
    vendor.add_field(FieldDef::new("Ref__c", FieldType::String).label("Legacy Reference").length(20).external_id());
    vendor.add_field(FieldDef::new("Tier__c", FieldType::Picklist).picklist(&["Gold", "Silver"], true));
    vendor.add_field(FieldDef::new("Score__c", FieldType::Double).precision_scale(5, 2));
    vendor
}
