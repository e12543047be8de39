//! The standard and custom objects of the simulated org.

use tidemark_core::FieldType;

use crate::schema::{FieldDef, ObjectDef};

/// Every object of a fresh org, in describeGlobal order.
pub fn standard_objects() -> Vec<ObjectDef> {
    vec![account(), user()]
}

fn account() -> ObjectDef {
    let mut o = ObjectDef::new("Account", "Account", "Accounts", "001");
    o.add_system_fields();
    o.add_field(FieldDef::new("Name", FieldType::String).label("Account Name").required().name_field());
    o
}

fn user() -> ObjectDef {
    let mut o = ObjectDef::new("User", "User", "Users", "005");
    o.add_system_fields();
    o.add_field(FieldDef::new("Username", FieldType::String).required().unique());
    o
}
