//! Sales objects: Contact, Lead, Opportunity, OpportunityLineItem, Campaign, CampaignMember.

use tidemark_core::FieldType;

use super::account::{INDUSTRIES, RATINGS, SOURCES};
use super::*;
use crate::schema::{Formula, ObjectDef, RuleCondition, ValidationRule};

pub(crate) const SALUTATIONS: [&str; 5] = ["Mr.", "Ms.", "Mrs.", "Dr.", "Prof."];
pub(crate) const CONTACT_LEVELS: [&str; 3] = ["Primary", "Secondary", "Tertiary"];
pub(crate) const LEAD_STATUSES: [&str; 4] =
    ["Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted"];
pub(crate) const PRODUCT_INTERESTS: [&str; 5] = ["Analytics", "Integration", "Mobile", "Security", "Support Plan"];
pub(crate) const STAGES: [(&str, i64); 10] = [
    ("Prospecting", 10),
    ("Qualification", 10),
    ("Needs Analysis", 20),
    ("Value Proposition", 50),
    ("Id. Decision Makers", 60),
    ("Perception Analysis", 70),
    ("Proposal/Price Quote", 75),
    ("Negotiation/Review", 90),
    ("Closed Won", 100),
    ("Closed Lost", 0),
];
pub(crate) const OPPORTUNITY_TYPES: [&str; 4] =
    ["Existing Customer - Upgrade", "Existing Customer - Replacement", "Existing Customer - Downgrade", "New Customer"];
pub(crate) const FORECAST_CATEGORIES: [&str; 5] = ["Omitted", "Pipeline", "BestCase", "Forecast", "Closed"];
pub(crate) const CAMPAIGN_TYPES: [&str; 8] =
    ["Conference", "Webinar", "Trade Show", "Public Relations", "Partners", "Advertisement", "Email", "Other"];
pub(crate) const CAMPAIGN_STATUSES: [&str; 4] = ["Planned", "In Progress", "Completed", "Aborted"];

/// A person's name fields as standard objects have them: `Salutation`, `FirstName`,
/// `LastName` (writable) and `Name` (maintained by the platform, `personname`).
fn add_person_name(o: &mut ObjectDef) {
    o.add_field(text("LastName", "Last Name", 80).required());
    o.add_field(text("FirstName", "First Name", 40));
    o.add_field(picklist("Salutation", "Salutation", &SALUTATIONS, false));
    o.add_field(system(text("Name", "Full Name", 121).name_field().no_id_lookup().extra_type_info("personname")));
}

pub fn contact() -> ObjectDef {
    let mut o = object("Contact", "Contact", "Contacts", "003");
    o.flags.mergeable = true;
    o.flags.feed_enabled = true;
    o.add_field(system(lookup("MasterRecordId", "Master Record ID", &["Contact"])));
    o.add_field(lookup("AccountId", "Account ID", &["Account"]));
    add_person_name(&mut o);
    add_standard_address(&mut o, "Mailing", "Mailing", "MailingAddress");
    o.add_field(field("Phone", FieldType::Phone, "Business Phone"));
    o.add_field(field("Fax", FieldType::Phone, "Business Fax"));
    o.add_field(field("MobilePhone", FieldType::Phone, "Mobile Phone"));
    o.add_field(field("HomePhone", FieldType::Phone, "Home Phone"));
    o.add_field(lookup("ReportsToId", "Reports To ID", &["Contact"]));
    // Standard Email fields are id-lookup fields: Bulk relationship columns such as the
    // documented `Lead:Who.Email` resolve parents through them.
    o.add_field(field("Email", FieldType::Email, "Email").length(80).id_lookup());
    o.add_field(text("Title", "Title", 128));
    o.add_field(text("Department", "Department", 80));
    o.add_field(text("AssistantName", "Assistant's Name", 40));
    o.add_field(picklist("LeadSource", "Lead Source", &SOURCES, false));
    o.add_field(field("Birthdate", FieldType::Date, "Birthdate"));
    o.add_field(long_textarea("Description", "Contact Description", 32000));
    o.add_field(owner());
    o.add_field(checkbox("HasOptedOutOfEmail", "Email Opt Out", false));
    o.add_field(checkbox("DoNotCall", "Do Not Call", false));
    o.add_field(system(field("LastActivityDate", FieldType::Date, "Last Activity")));
    add_recently_viewed(&mut o);
    o.add_field(picklist("Level__c", "Level", &CONTACT_LEVELS, false));
    o.add_field(text("Languages__c", "Languages", 100));
    o.add_field(field("Preferred_Call_Time__c", FieldType::Time, "Preferred Call Time"));
    o.add_field(field("Tax_Id__c", FieldType::Encryptedstring, "Tax ID"));
    o.add_field(
        text("Account_Name__c", "Account Name", 1300)
            .formula(Formula::ParentField { reference_field: "AccountId".into(), parent_field: "Name".into() }),
    );
    move_audit_after(&mut o, "OwnerId");
    o
}

pub fn lead() -> ObjectDef {
    let mut o = object("Lead", "Lead", "Leads", "00Q");
    o.flags.mergeable = true;
    o.flags.feed_enabled = true;
    o.add_field(system(lookup("MasterRecordId", "Master Record ID", &["Lead"])));
    add_person_name(&mut o);
    o.add_field(text("Title", "Title", 128));
    o.add_field(text("Company", "Company", 255).required());
    add_standard_address(&mut o, "", "", "Address");
    o.add_field(field("Phone", FieldType::Phone, "Phone"));
    o.add_field(field("MobilePhone", FieldType::Phone, "Mobile Phone"));
    o.add_field(field("Email", FieldType::Email, "Email").length(80).id_lookup());
    o.add_field(field("Website", FieldType::Url, "Website"));
    o.add_field(long_textarea("Description", "Description", 32000));
    o.add_field(picklist("LeadSource", "Lead Source", &SOURCES, false));
    let mut status = picklist("Status", "Status", &LEAD_STATUSES, false).required();
    status.defaulted_on_create = true;
    if let Some(first) = status.picklist_values.first_mut() {
        first.default_value = true;
    }
    o.add_field(status);
    o.add_field(picklist("Industry", "Industry", &INDUSTRIES, false));
    o.add_field(picklist("Rating", "Rating", &RATINGS, false));
    o.add_field(number("AnnualRevenue", FieldType::Currency, "Annual Revenue", 18, 0));
    let mut employees = field("NumberOfEmployees", FieldType::Int, "Employees");
    employees.digits = 8;
    o.add_field(employees);
    o.add_field(owner());
    o.add_field(checkbox("HasOptedOutOfEmail", "Email Opt Out", false));
    let mut converted = checkbox("IsConverted", "Converted", false);
    converted.updateable = false;
    o.add_field(converted);
    o.add_field(system(field("ConvertedDate", FieldType::Date, "Converted Date")));
    o.add_field(system(lookup("ConvertedAccountId", "Converted Account ID", &["Account"])));
    o.add_field(system(lookup("ConvertedContactId", "Converted Contact ID", &["Contact"])));
    o.add_field(system(lookup("ConvertedOpportunityId", "Converted Opportunity ID", &["Opportunity"])));
    o.add_field(checkbox("IsUnreadByOwner", "Unread By Owner", false));
    o.add_field(system(field("LastActivityDate", FieldType::Date, "Last Activity")));
    add_recently_viewed(&mut o);
    o.add_field(
        field("Product_Interest__c", FieldType::Multipicklist, "Product Interest")
            .length(4099)
            .picklist(&PRODUCT_INTERESTS, true),
    );
    move_audit_after(&mut o, "OwnerId");
    o
}

pub fn opportunity() -> ObjectDef {
    let mut o = object("Opportunity", "Opportunity", "Opportunities", "006");
    o.flags.feed_enabled = true;
    o.add_field(lookup("AccountId", "Account ID", &["Account"]));
    o.add_field(text("Name", "Name", 120).required().name_field().no_id_lookup());
    o.add_field(long_textarea("Description", "Description", 32000));
    let stages: Vec<&str> = STAGES.iter().map(|(s, _)| *s).collect();
    o.add_field(picklist("StageName", "Stage", &stages, false).length(255).required());
    o.add_field(number("Amount", FieldType::Currency, "Amount", 18, 2));
    o.add_field(number("Probability", FieldType::Percent, "Probability (%)", 3, 0));
    o.add_field(number("ExpectedRevenue", FieldType::Currency, "Expected Amount", 18, 2).formula(Formula::Product {
        left: "Amount".into(),
        right: "Probability".into(),
        divisor: 100.0,
    }));
    o.add_field(number("TotalOpportunityQuantity", FieldType::Double, "Quantity", 18, 2));
    o.add_field(field("CloseDate", FieldType::Date, "Close Date").required());
    o.add_field(picklist("Type", "Opportunity Type", &OPPORTUNITY_TYPES, false));
    o.add_field(text("NextStep", "Next Step", 255));
    o.add_field(picklist("LeadSource", "Lead Source", &SOURCES, false));
    let mut closed = checkbox("IsClosed", "Closed", false);
    closed.createable = false;
    closed.updateable = false;
    o.add_field(closed);
    let mut won = checkbox("IsWon", "Won", false);
    won.createable = false;
    won.updateable = false;
    o.add_field(won);
    o.add_field(system(picklist("ForecastCategory", "Forecast Category", &FORECAST_CATEGORIES, true)).required());
    o.add_field(lookup("CampaignId", "Campaign ID", &["Campaign"]));
    let mut has_items = checkbox("HasOpportunityLineItem", "Has Line Item", false);
    has_items.createable = false;
    has_items.updateable = false;
    o.add_field(has_items);
    o.add_field(owner());
    o.add_field(system(field("LastActivityDate", FieldType::Date, "Last Activity")));
    o.add_field(system(field("FiscalQuarter", FieldType::Int, "Fiscal Quarter")));
    o.add_field(system(field("FiscalYear", FieldType::Int, "Fiscal Year")));
    o.add_field(system(text("Fiscal", "Fiscal Period", 6)));
    add_recently_viewed(&mut o);
    o.validation_rules.push(ValidationRule {
        name: "Amount_Not_Negative".into(),
        field: "Amount".into(),
        when: RuleCondition::LessThan(0.0),
        message: "Amount must not be negative.".into(),
        error_field: Some("Amount".into()),
    });
    move_audit_after(&mut o, "OwnerId");
    o
}

pub fn opportunity_line_item() -> ObjectDef {
    let mut o = object("OpportunityLineItem", "Opportunity Product", "Opportunity Product", "00k");
    o.flags.undeletable = false;
    o.flags.searchable = false;
    o.add_field(lookup("OpportunityId", "Opportunity ID", &["Opportunity"]).required().create_only());
    o.add_field(system(text("Name", "Opportunity Product Name", 376).name_field().no_id_lookup()));
    o.add_field(text("ProductCode", "Product Code", 255));
    o.add_field(number("Quantity", FieldType::Double, "Quantity", 12, 2).required());
    o.add_field(number("UnitPrice", FieldType::Currency, "Sales Price", 18, 2));
    o.add_field(number("ListPrice", FieldType::Currency, "List Price", 18, 2).read_only());
    o.add_field(number("Discount", FieldType::Percent, "Discount", 18, 2));
    o.add_field(number("Subtotal", FieldType::Currency, "Subtotal", 18, 2).formula(Formula::Product {
        left: "Quantity".into(),
        right: "UnitPrice".into(),
        divisor: 1.0,
    }));
    o.add_field(field("ServiceDate", FieldType::Date, "Date"));
    o.add_field(text("Description", "Line Description", 255));
    o.add_field(system(field("SortOrder", FieldType::Int, "Sort Order")));
    move_audit_after(&mut o, "Name");
    o
}

pub fn campaign() -> ObjectDef {
    let mut o = object("Campaign", "Campaign", "Campaigns", "701");
    o.add_field(text("Name", "Name", 80).required().name_field().no_id_lookup());
    o.add_field(lookup("ParentId", "Parent Campaign ID", &["Campaign"]));
    o.add_field(picklist("Type", "Type", &CAMPAIGN_TYPES, false));
    o.add_field(picklist("Status", "Status", &CAMPAIGN_STATUSES, false));
    o.add_field(field("StartDate", FieldType::Date, "Start Date"));
    o.add_field(field("EndDate", FieldType::Date, "End Date"));
    o.add_field(number("ExpectedRevenue", FieldType::Currency, "Expected Revenue in Campaign", 18, 0));
    o.add_field(number("BudgetedCost", FieldType::Currency, "Budgeted Cost in Campaign", 18, 0));
    o.add_field(number("ActualCost", FieldType::Currency, "Actual Cost in Campaign", 18, 0));
    o.add_field(number("ExpectedResponse", FieldType::Percent, "Expected Response (%)", 10, 2));
    o.add_field(number("NumberSent", FieldType::Double, "Num Sent in Campaign", 18, 0));
    o.add_field(checkbox("IsActive", "Active", false));
    o.add_field(long_textarea("Description", "Description", 32000));
    o.add_field(system(field("NumberOfLeads", FieldType::Int, "Leads in Campaign")).required());
    o.add_field(system(field("NumberOfContacts", FieldType::Int, "Contacts in Campaign")).required());
    o.add_field(owner());
    o.add_field(system(field("LastActivityDate", FieldType::Date, "Last Activity")));
    add_recently_viewed(&mut o);
    move_audit_after(&mut o, "OwnerId");
    o
}

pub fn campaign_member() -> ObjectDef {
    let mut o = object("CampaignMember", "Campaign Member", "Campaign Members", "00v");
    o.flags.undeletable = false;
    o.flags.searchable = false;
    o.add_field(lookup("CampaignId", "Campaign ID", &["Campaign"]).required().create_only());
    o.add_field(lookup("LeadId", "Lead ID", &["Lead"]).create_only());
    o.add_field(lookup("ContactId", "Contact ID", &["Contact"]).create_only());
    o.add_field(picklist("Status", "Status", &["Sent", "Responded"], false).length(40));
    let mut responded = checkbox("HasResponded", "Responded", false);
    responded.createable = false;
    responded.updateable = false;
    o.add_field(responded);
    o.add_field(system(field("FirstRespondedDate", FieldType::Date, "First Responded Date")));
    o.add_field(system(text("Name", "Name", 121).name_field().no_id_lookup()));
    move_audit_after(&mut o, "IsDeleted");
    o
}
