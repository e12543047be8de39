//! Account (field for field after a real org's describe), its feed and its field history.

use tidemark_core::FieldType;

use super::*;
use crate::schema::{ObjectDef, ObjectFlags};

pub(crate) const ACCOUNT_TYPES: [&str; 7] = [
    "Prospect",
    "Customer - Direct",
    "Customer - Channel",
    "Channel Partner / Reseller",
    "Installation Partner",
    "Technology Partner",
    "Other",
];

pub(crate) const INDUSTRIES: [&str; 32] = [
    "Agriculture",
    "Apparel",
    "Banking",
    "Biotechnology",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Entertainment",
    "Environmental",
    "Finance",
    "Food & Beverage",
    "Government",
    "Healthcare",
    "Hospitality",
    "Insurance",
    "Machinery",
    "Manufacturing",
    "Media",
    "Not For Profit",
    "Recreation",
    "Retail",
    "Shipping",
    "Technology",
    "Telecommunications",
    "Transportation",
    "Utilities",
    "Other",
];

pub(crate) const RATINGS: [&str; 3] = ["Hot", "Warm", "Cold"];
pub(crate) const SOURCES: [&str; 5] = ["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"];

pub fn account() -> ObjectDef {
    let mut o = object("Account", "Account", "Accounts", "001");
    o.flags.mergeable = true;
    o.flags.feed_enabled = true;
    o.add_field(system(lookup("MasterRecordId", "Master Record ID", &["Account"])));
    o.add_field(text("Name", "Account Name", 255).required().name_field().no_id_lookup().extra_type_info("switchablepersonname"));
    o.add_field(picklist("Type", "Account Type", &ACCOUNT_TYPES, false));
    o.add_field(lookup("ParentId", "Parent Account ID", &["Account"]));
    add_standard_address(&mut o, "Billing", "Billing", "BillingAddress");
    add_standard_address(&mut o, "Shipping", "Shipping", "ShippingAddress");
    o.add_field(field("Phone", FieldType::Phone, "Account Phone"));
    o.add_field(field("Fax", FieldType::Phone, "Account Fax"));
    o.add_field(text("AccountNumber", "Account Number", 40));
    o.add_field(field("Website", FieldType::Url, "Website"));
    o.add_field(system(field("PhotoUrl", FieldType::Url, "Photo URL").extra_type_info("imageurl")));
    o.add_field(text("Sic", "SIC Code", 20));
    o.add_field(picklist("Industry", "Industry", &INDUSTRIES, false));
    o.add_field(number("AnnualRevenue", FieldType::Currency, "Annual Revenue", 18, 0));
    let mut employees = field("NumberOfEmployees", FieldType::Int, "Employees");
    employees.digits = 8;
    o.add_field(employees);
    o.add_field(picklist("Ownership", "Ownership", &["Public", "Private", "Subsidiary", "Other"], false));
    o.add_field(text("TickerSymbol", "Ticker Symbol", 20));
    o.add_field(long_textarea("Description", "Account Description", 32000));
    o.add_field(picklist("Rating", "Account Rating", &RATINGS, false));
    o.add_field(text("Site", "Account Site", 80));
    o.add_field(owner());
    o.add_field(system(field("LastActivityDate", FieldType::Date, "Last Activity")));
    add_recently_viewed(&mut o);
    let mut partner = checkbox("IsPartner", "Partner Account", false);
    partner.createable = false;
    o.add_field(partner);
    let mut portal = checkbox("IsCustomerPortal", "Customer Portal Account", false);
    portal.createable = false;
    o.add_field(portal);
    for (name, label) in
        [("ChannelProgramName", "Channel Program Name"), ("ChannelProgramLevelName", "Channel Program Level Name")]
    {
        let mut f = system(text(name, label, 255));
        f.filterable = false;
        f.sortable = false;
        o.add_field(f);
    }
    o.add_field(text("Jigsaw", "Data.com Key", 20));
    let mut jigsaw = system(text("JigsawCompanyId", "Jigsaw Company ID", 20));
    jigsaw.relationship_name = Some("JigsawCompany".to_owned());
    o.add_field(jigsaw);
    o.add_field(picklist(
        "CleanStatus",
        "Clean Status",
        &["Matched", "Different", "Acknowledged", "NotFound", "Inactive", "Pending", "SelectMatch", "Skipped"],
        true,
    ));
    o.add_field(picklist("AccountSource", "Account Source", &SOURCES, false));
    o.add_field(text("DunsNumber", "D-U-N-S Number", 9));
    o.add_field(text("Tradestyle", "Tradestyle", 255));
    o.add_field(text("NaicsCode", "NAICS Code", 8));
    o.add_field(text("NaicsDesc", "NAICS Description", 120));
    o.add_field(text("YearStarted", "Year Started", 4));
    o.add_field(text("SicDesc", "SIC Description", 80));
    o.add_field(lookup("DandbCompanyId", "D&B Company ID", &["DandBCompany"]));
    o.add_field(lookup("OperatingHoursId", "Operating Hour ID", &["OperatingHours"]));
    // Real describe order: audit fields follow OwnerId, then activity and recently-viewed dates.
    move_audit_after(&mut o, "OwnerId");
    o
}

/// `AccountFeed`: Chatter posts on accounts. Queryable through REST, but Bulk API refuses it
/// (feed objects do not support Bulk queries).
pub fn account_feed() -> ObjectDef {
    let mut o = object("AccountFeed", "Account Feed", "Account Feed", "0D5");
    o.flags = ObjectFlags {
        createable: false,
        updateable: false,
        undeletable: false,
        triggerable: false,
        searchable: false,
        layoutable: false,
        bulk_queryable: false,
        pk_chunking_supported: false,
        ..ObjectFlags::default()
    };
    o.add_field(system(lookup("ParentId", "Parent ID", &["Account"])).required());
    o.add_field(system(picklist(
        "Type",
        "Feed Item Type",
        &["TextPost", "LinkPost", "ContentPost", "TrackedChange", "CreateRecordEvent"],
        true,
    )));
    o.add_field(system(field("CommentCount", FieldType::Int, "Comment Count")).required());
    o.add_field(system(field("LikeCount", FieldType::Int, "Like Count")).required());
    o.add_field(system(text("Title", "Title", 255)));
    o.add_field(system(long_textarea("Body", "Body", 10000)));
    o.add_field(system(field("LinkUrl", FieldType::Url, "Link Url").length(1000)));
    o.add_field(system(checkbox("IsRichText", "Is Rich Text", false)));
    o
}

/// `AccountHistory`: field history of tracked Account fields, with `anyType` old/new values.
pub fn account_history() -> ObjectDef {
    let mut o = object("AccountHistory", "Account History", "Account History", "017");
    o.flags = read_only_flags(true);
    o.add_field(system(lookup("AccountId", "Account ID", &["Account"])).required());
    o.add_field(
        system(picklist(
            "Field",
            "Changed Field",
            &["created", "Name", "Industry", "Rating", "Type", "AnnualRevenue", "Phone", "OwnerId"],
            true,
        ))
        .length(255)
        .required(),
    );
    o.add_field(system(text("DataType", "Data Type", 40)));
    o.add_field(system(field("OldValue", FieldType::AnyType, "Old Value")));
    o.add_field(system(field("NewValue", FieldType::AnyType, "New Value")));
    o
}
