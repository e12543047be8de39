//! Field slots of every generated object, resolved once per object (not per record): each
//! `slots!` struct names the fields a builder writes.

use crate::org::Org;
use crate::row::Slot;

macro_rules! slots {
    ($name:ident, $object:literal, [$($field:ident),* $(,)?]) => {
        #[allow(non_snake_case)]
        #[derive(Clone, Copy)]
        pub(crate) struct $name { $(pub(crate) $field: Slot),* }
        impl $name {
            fn resolve(org: &Org) -> $name {
                let def = &org.table($object).expect(concat!($object, " is in the catalog")).def;
                $name { $($field: def.slot(stringify!($field))),* }
            }
        }
    };
}

slots!(
    UserSlots,
    "User",
    [
        Username,
        LastName,
        FirstName,
        Name,
        CompanyName,
        Department,
        Title,
        Email,
        Phone,
        Alias,
        CommunityNickname,
        IsActive,
        TimeZoneSidKey,
        LocaleSidKey,
        EmailEncodingKey,
        LanguageLocaleKey,
        ManagerId,
        UserType,
        LastLoginDate,
    ]
);
slots!(LicenseSlots, "UserLicense", [LicenseDefinitionKey, Name, MasterLabel, Status, TotalLicenses, UsedLicenses]);
slots!(
    CampaignSlots,
    "Campaign",
    [
        Name,
        Type,
        Status,
        StartDate,
        EndDate,
        ExpectedRevenue,
        BudgetedCost,
        ActualCost,
        ExpectedResponse,
        NumberSent,
        IsActive,
        NumberOfLeads,
        NumberOfContacts,
        OwnerId,
    ]
);
slots!(
    AccountSlots,
    "Account",
    [
        Name,
        Type,
        ParentId,
        BillingStreet,
        BillingCity,
        BillingState,
        BillingPostalCode,
        BillingCountry,
        BillingLatitude,
        BillingLongitude,
        BillingGeocodeAccuracy,
        ShippingStreet,
        ShippingCity,
        ShippingState,
        ShippingPostalCode,
        ShippingCountry,
        Phone,
        Fax,
        AccountNumber,
        Website,
        Industry,
        AnnualRevenue,
        NumberOfEmployees,
        Ownership,
        TickerSymbol,
        Description,
        Rating,
        OwnerId,
        IsPartner,
        IsCustomerPortal,
        AccountSource,
        YearStarted,
        CleanStatus,
    ]
);
slots!(
    ContactSlots,
    "Contact",
    [
        AccountId,
        LastName,
        FirstName,
        Salutation,
        Name,
        MailingStreet,
        MailingCity,
        MailingState,
        MailingPostalCode,
        MailingCountry,
        MailingLatitude,
        MailingLongitude,
        Phone,
        MobilePhone,
        Email,
        Title,
        Department,
        LeadSource,
        Birthdate,
        Description,
        OwnerId,
        HasOptedOutOfEmail,
        DoNotCall,
        Level__c,
        Languages__c,
        Preferred_Call_Time__c,
        Tax_Id__c,
    ]
);
slots!(
    LeadSlots,
    "Lead",
    [
        LastName,
        FirstName,
        Salutation,
        Name,
        Title,
        Company,
        Street,
        City,
        State,
        PostalCode,
        Country,
        Latitude,
        Longitude,
        Phone,
        Email,
        Website,
        LeadSource,
        Status,
        Industry,
        Rating,
        AnnualRevenue,
        NumberOfEmployees,
        OwnerId,
        HasOptedOutOfEmail,
        IsConverted,
        ConvertedDate,
        IsUnreadByOwner,
        Product_Interest__c,
    ]
);
slots!(
    OpportunitySlots,
    "Opportunity",
    [
        AccountId,
        Name,
        StageName,
        Amount,
        Probability,
        CloseDate,
        Type,
        NextStep,
        LeadSource,
        IsClosed,
        IsWon,
        ForecastCategory,
        CampaignId,
        HasOpportunityLineItem,
        OwnerId,
        FiscalQuarter,
        FiscalYear,
        Fiscal,
    ]
);
slots!(
    LineItemSlots,
    "OpportunityLineItem",
    [OpportunityId, Name, ProductCode, Quantity, UnitPrice, ListPrice, Discount, ServiceDate, SortOrder,]
);
slots!(
    CaseSlots,
    "Case",
    [
        CaseNumber,
        ContactId,
        AccountId,
        SuppliedEmail,
        Type,
        Status,
        Reason,
        Origin,
        Subject,
        Priority,
        Description,
        IsClosed,
        ClosedDate,
        IsEscalated,
        OwnerId,
    ]
);
slots!(
    TaskSlots,
    "Task",
    [
        WhoId,
        WhatId,
        Subject,
        ActivityDate,
        Status,
        Priority,
        IsHighPriority,
        OwnerId,
        Description,
        IsClosed,
        AccountId,
        CallDurationInSeconds,
        CallType,
        IsReminderSet,
        TaskSubtype,
    ]
);
slots!(
    InvoiceSlots,
    "Invoice__c",
    [
        Name,
        OwnerId,
        Account__c,
        Invoice_Number__c,
        Amount__c,
        Tax_Rate__c,
        Invoice_Date__c,
        Due_Date__c,
        Paid__c,
        Paid_At__c,
        Status__c,
        Billing_Email__c,
        Payment_Portal__c,
        Line_Count__c,
        Notes__c,
        Terms__c,
        Service_Address__Street__s,
        Service_Address__City__s,
        Service_Address__PostalCode__s,
        Service_Address__StateCode__s,
        Service_Address__CountryCode__s,
        Service_Address__Latitude__s,
        Service_Address__Longitude__s,
    ]
);
slots!(
    SubscriptionSlots,
    "Subscription__c",
    [
        Name,
        Account__c,
        Plan__c,
        Status__c,
        Seats__c,
        Monthly_Fee__c,
        Discount__c,
        Start_Date__c,
        End_Date__c,
        Auto_Renew__c,
        Renewal_Time__c,
        Features__c,
        Site_Location__Latitude__s,
        Site_Location__Longitude__s,
        Admin_Token__c,
        Notes__c,
    ]
);
slots!(MemberSlots, "CampaignMember", [CampaignId, ContactId, Status, HasResponded, FirstRespondedDate, Name]);
slots!(FeedSlots, "AccountFeed", [ParentId, Type, CommentCount, LikeCount, Title, Body, LinkUrl, IsRichText]);
slots!(HistorySlots, "AccountHistory", [AccountId, Field, DataType, OldValue, NewValue]);
slots!(AttachmentSlots, "Attachment", [ParentId, Name, IsPrivate, ContentType, BodyLength, Body, OwnerId]);

/// Every object's slots, resolved on first use.
pub(crate) struct AllSlots {
    pub(crate) user: UserSlots,
    pub(crate) license: LicenseSlots,
    pub(crate) campaign: CampaignSlots,
    pub(crate) account: AccountSlots,
    pub(crate) contact: ContactSlots,
    pub(crate) lead: LeadSlots,
    pub(crate) opportunity: OpportunitySlots,
    pub(crate) line_item: LineItemSlots,
    pub(crate) case: CaseSlots,
    pub(crate) task: TaskSlots,
    pub(crate) invoice: InvoiceSlots,
    pub(crate) subscription: SubscriptionSlots,
    pub(crate) member: MemberSlots,
    pub(crate) feed: FeedSlots,
    pub(crate) history: HistorySlots,
    pub(crate) attachment: AttachmentSlots,
}

impl AllSlots {
    pub(crate) fn resolve(org: &Org) -> AllSlots {
        AllSlots {
            user: UserSlots::resolve(org),
            license: LicenseSlots::resolve(org),
            campaign: CampaignSlots::resolve(org),
            account: AccountSlots::resolve(org),
            contact: ContactSlots::resolve(org),
            lead: LeadSlots::resolve(org),
            opportunity: OpportunitySlots::resolve(org),
            line_item: LineItemSlots::resolve(org),
            case: CaseSlots::resolve(org),
            task: TaskSlots::resolve(org),
            invoice: InvoiceSlots::resolve(org),
            subscription: SubscriptionSlots::resolve(org),
            member: MemberSlots::resolve(org),
            feed: FeedSlots::resolve(org),
            history: HistorySlots::resolve(org),
            attachment: AttachmentSlots::resolve(org),
        }
    }
}
