//! The compiled form of a query: field paths resolved to field positions, literals converted to
//! the compared field's type, relative dates turned into instants. Everything the evaluator and
//! the projections need, so that no name is looked up per row.

use tidemark_core::{FieldType, SfId};

use super::ast::AggFn;
use super::lexer::CmpOp;
use crate::org::read::FieldValue;
use crate::org::{ObjectTable, Org};
use crate::row::Row;
use crate::schema::{FieldDef, ObjectDef};

/// A field of a known object, remembered by position and name. The position is a fast path;
/// the name keeps the lookup right when the schema changed after compilation (a cursor page
/// rendered later), or when a polymorphic reference leads to another object.
#[derive(Debug, Clone)]
pub struct FieldLookup {
    pub object: String,
    pub name: String,
    pub index: usize,
}

impl FieldLookup {
    pub fn new(def: &ObjectDef, index: usize) -> FieldLookup {
        FieldLookup { object: def.name.clone(), name: def.fields[index].name.clone(), index }
    }

    pub fn resolve<'d>(&self, def: &'d ObjectDef) -> Option<&'d FieldDef> {
        if def.name == self.object
            && let Some(f) = def.fields.get(self.index).filter(|f| f.name == self.name)
        {
            return Some(f);
        }
        def.field(&self.name)
    }
}

/// Follows one reference field from `row` to the referenced record.
pub fn follow<'o>(org: &'o Org, table: &'o ObjectTable, row: &'o Row, hop: &FieldLookup) -> Option<(&'o ObjectTable, &'o Row)> {
    let field = hop.resolve(&table.def)?;
    let raw = row.get(field.slot?).as_str()?;
    let id = SfId::parse(raw).ok()?;
    org.find(&id)
}

/// A value reachable from a root record: zero or more reference hops, then a field.
#[derive(Debug, Clone)]
pub struct FieldPath {
    pub hops: Vec<FieldLookup>,
    pub field: FieldLookup,
    /// Type and scale of the field as compiled (the first polymorphic target that has it).
    pub field_type: FieldType,
    pub scale: u8,
    /// Canonical dotted name, e.g. `Account.Owner.Name` (Bulk CSV header).
    pub display: String,
}

impl FieldPath {
    /// The value for the root record `row` of `table`; `None` when a hop leads nowhere.
    pub fn value<'o>(&self, org: &'o Org, table: &'o ObjectTable, row: &'o Row) -> Option<FieldValue<'o>> {
        let (mut t, mut r) = (table, row);
        for hop in &self.hops {
            (t, r) = follow(org, t, r, hop)?;
        }
        let f = self.field.resolve(&t.def)?;
        Some(org.field_value(t, r, f))
    }

    /// The stored slot when the value lives directly in the root row (the fast path).
    pub fn root_slot(&self, root: &ObjectDef) -> Option<crate::row::Slot> {
        if !self.hops.is_empty() {
            return None;
        }
        self.field.resolve(root).and_then(|f| f.slot)
    }
}

/// A literal converted for comparison with one field.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Null,
    Bool(bool),
    Num(f64),
    /// Text compared case-insensitively; stored lower-cased.
    Text(String),
    /// Ids compared on their case-sensitive 15-character form.
    Id(String),
    Date(i32),
    DateTime(i64),
    Time(u32),
    /// A relative date literal as a half-open range: days for date fields, ms for datetimes.
    Range(i64, i64),
}

#[derive(Debug, Clone)]
pub enum Pred {
    And(Vec<Pred>),
    Or(Vec<Pred>),
    Not(Box<Pred>),
    Cmp { path: FieldPath, op: CmpOp, value: Operand },
    In { path: FieldPath, negated: bool, values: Vec<Operand> },
    Like { path: FieldPath, pattern: Vec<LikeTok> },
}

#[derive(Debug, Clone, PartialEq)]
pub enum LikeTok {
    /// A lower-cased literal character.
    Char(char),
    /// `_`
    One,
    /// `%`
    Any,
}

#[derive(Debug, Clone)]
pub struct OrderKey {
    pub path: FieldPath,
    pub descending: bool,
    pub nulls_first: bool,
}

/// How a REST record is shaped: fields in SELECT order, parent relationships nested.
#[derive(Debug, Clone)]
pub enum OutNode {
    Field {
        field: FieldLookup,
    },
    Parent {
        key: String,
        hop: FieldLookup,
        children: Vec<OutNode>,
    },
    /// A parent-to-child subquery: records of another object whose `reference` points here.
    Children {
        key: String,
        reference: FieldLookup,
        plan: Box<super::resolve::Resolved>,
    },
}

/// One column of an aggregate query's result.
#[derive(Debug, Clone)]
pub struct AggColumn {
    pub key: String,
    pub kind: AggKind,
}

#[derive(Debug, Clone)]
pub enum AggKind {
    /// A GROUP BY field.
    Group(FieldPath),
    Func {
        func: AggFn,
        arg: FieldPath,
    },
}

/// What the query selects.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Records: flat columns (Bulk CSV) and the REST shape.
    Records { columns: Vec<FieldPath>, tree: Vec<OutNode> },
    /// `SELECT COUNT() …`
    CountOnly,
    /// Aggregate functions, optionally grouped.
    Aggregate { columns: Vec<AggColumn>, group_by: Vec<FieldPath> },
}
