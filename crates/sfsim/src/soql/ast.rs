//! The parsed, not yet resolved, form of a SOQL statement. Every name keeps the byte offset of
//! its first character so that resolution errors can point at it the way Salesforce does.

use super::lexer::CmpOp;

/// A dotted field path such as `Account.Owner.Name`.
#[derive(Debug, Clone, PartialEq)]
pub struct PathExpr {
    pub segments: Vec<String>,
    pub offset: usize,
}

impl PathExpr {
    pub fn dotted(&self) -> String {
        self.segments.join(".")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFn {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
}

impl AggFn {
    pub fn from_name(name: &str) -> Option<AggFn> {
        Some(match name.to_ascii_uppercase().as_str() {
            "COUNT" => AggFn::Count,
            "COUNT_DISTINCT" => AggFn::CountDistinct,
            "SUM" => AggFn::Sum,
            "AVG" => AggFn::Avg,
            "MIN" => AggFn::Min,
            "MAX" => AggFn::Max,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    Field(PathExpr),
    /// `COUNT()` with no argument: the row count only.
    CountStar {
        offset: usize,
    },
    /// `COUNT(Id)`, `SUM(Amount) total`, …
    Aggregate {
        func: AggFn,
        arg: PathExpr,
        alias: Option<String>,
        offset: usize,
    },
    /// A parent-to-child subquery `(SELECT … FROM Contacts)`.
    Subquery(Box<Statement>),
}

/// A literal on the right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Str(String),
    /// The literal text, parsed by the resolver against the field type.
    Number(String),
    Date(String),
    DateTime(String),
    /// `TODAY`, `LAST_N_DAYS:30`, … (name upper-cased, optional `n`).
    Relative(String, Option<i64>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum CondExpr {
    And(Vec<CondExpr>),
    Or(Vec<CondExpr>),
    Not(Box<CondExpr>),
    Cmp { path: PathExpr, op: CmpOp, value: Literal, value_offset: usize },
    In { path: PathExpr, negated: bool, values: Vec<(Literal, usize)> },
    Like { path: PathExpr, pattern: String, value_offset: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    pub path: PathExpr,
    pub descending: bool,
    /// `Some(true)` = NULLS FIRST, `Some(false)` = NULLS LAST, `None` = the default.
    pub nulls_first: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub select: Vec<SelectItem>,
    pub from: String,
    pub from_offset: usize,
    pub where_: Option<CondExpr>,
    pub group_by: Vec<PathExpr>,
    pub order_by: Vec<OrderItem>,
    pub limit: Option<u64>,
    pub offset: Option<(u64, usize)>,
}
