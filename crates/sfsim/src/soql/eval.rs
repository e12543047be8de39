//! Evaluation: WHERE predicates over rows, ORDER BY, and aggregates.

use std::borrow::Cow;
use std::cmp::Ordering;

use tidemark_core::FieldType;

use super::ast::AggFn;
use super::lexer::CmpOp;
use super::plan::{AggColumn, AggKind, FieldPath, LikeTok, Operand, OrderKey, Pred};
use crate::org::read::FieldValue;
use crate::org::{ObjectTable, Org};
use crate::row::Row;
use crate::value::{Value, ValueRef};

const RELATIVE_DATES: &[&str] = &[
    "YESTERDAY",
    "TODAY",
    "TOMORROW",
    "LAST_WEEK",
    "THIS_WEEK",
    "NEXT_WEEK",
    "LAST_MONTH",
    "THIS_MONTH",
    "NEXT_MONTH",
    "LAST_YEAR",
    "THIS_YEAR",
    "NEXT_YEAR",
    "LAST_90_DAYS",
    "NEXT_90_DAYS",
    "LAST_N_DAYS",
    "NEXT_N_DAYS",
    "N_DAYS_AGO",
];

/// Whether `word` (upper-case) is a relative date literal.
pub fn is_relative_date(word: &str) -> bool {
    RELATIVE_DATES.contains(&word)
}

/// Reads a path's value for one root row.
fn read<'o>(org: &'o Org, table: &'o ObjectTable, row: &'o Row, path: &FieldPath) -> FieldValue<'o> {
    if path.hops.is_empty() {
        if let Some(f) = path.field.resolve(&table.def) {
            return org.field_value(table, row, f);
        }
        return FieldValue::Stored(ValueRef::Null);
    }
    path.value(org, table, row).unwrap_or(FieldValue::Stored(ValueRef::Null))
}

/// Whether `row` satisfies `pred`. SOQL has two-valued logic: a null field is unequal to every
/// non-null literal, so `Name != 'x'` matches records whose Name is null.
pub fn matches(org: &Org, table: &ObjectTable, row: &Row, pred: &Pred) -> bool {
    match pred {
        Pred::And(parts) => parts.iter().all(|p| matches(org, table, row, p)),
        Pred::Or(parts) => parts.iter().any(|p| matches(org, table, row, p)),
        Pred::Not(inner) => !matches(org, table, row, inner),
        Pred::Cmp { path, op, value } => {
            let v = read(org, table, row, path);
            compare(v.as_ref(), *op, value)
        }
        Pred::In { path, negated, values } => {
            let v = read(org, table, row, path);
            let v = v.as_ref();
            let found = values.iter().any(|lit| compare(v, CmpOp::Eq, lit));
            found != *negated
        }
        Pred::Like { path, pattern } => {
            let v = read(org, table, row, path);
            match v.as_ref() {
                ValueRef::Str(s) => like(s, pattern),
                _ => false,
            }
        }
    }
}

fn compare(v: ValueRef<'_>, op: CmpOp, lit: &Operand) -> bool {
    if let Operand::Null = lit {
        return match op {
            CmpOp::Eq => v.is_null(),
            CmpOp::Ne => !v.is_null(),
            _ => false,
        };
    }
    if v.is_null() {
        return op == CmpOp::Ne;
    }
    if let Operand::Range(from, to) = lit {
        let x = match v {
            ValueRef::Date(d) => i64::from(d),
            ValueRef::DateTime(t) => t,
            _ => return false,
        };
        return match op {
            CmpOp::Eq => *from <= x && x < *to,
            CmpOp::Ne => !(*from <= x && x < *to),
            CmpOp::Lt => x < *from,
            CmpOp::Le => x < *to,
            CmpOp::Gt => x >= *to,
            CmpOp::Ge => x >= *from,
        };
    }
    let ord = match (v, lit) {
        (ValueRef::Str(s), Operand::Id(id)) => {
            let short = s.get(..15).unwrap_or(s);
            Some(short.cmp(id.as_str()))
        }
        (ValueRef::Str(s), Operand::Text(t)) => Some(cmp_ignore_case(s, t)),
        (ValueRef::Bool(b), Operand::Bool(l)) => Some(b.cmp(l)),
        (v, Operand::Num(n)) => v.as_f64().and_then(|x| x.partial_cmp(n)),
        (ValueRef::Date(d), Operand::Date(l)) => Some(d.cmp(l)),
        (ValueRef::DateTime(t), Operand::DateTime(l)) => Some(t.cmp(l)),
        // A date field is compared with a datetime at midnight UTC.
        (ValueRef::DateTime(t), Operand::Date(l)) => Some(t.cmp(&(i64::from(*l) * 86_400_000))),
        (ValueRef::Time(t), Operand::Time(l)) => Some(t.cmp(l)),
        _ => None,
    };
    let Some(ord) = ord else { return op == CmpOp::Ne };
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    }
}

/// Compares `s` with an already lower-cased `lower`, case-insensitively, without allocating
/// for ASCII text.
fn cmp_ignore_case(s: &str, lower: &str) -> Ordering {
    if s.is_ascii() && lower.is_ascii() {
        let a = s.bytes().map(|b| b.to_ascii_lowercase());
        return a.cmp(lower.bytes());
    }
    s.to_lowercase().as_str().cmp(lower)
}

/// SQL LIKE over lower-cased characters: `%` any run, `_` one character.
pub fn like(s: &str, pattern: &[LikeTok]) -> bool {
    let text: Vec<char> = if s.is_ascii() {
        s.bytes().map(|b| char::from(b.to_ascii_lowercase())).collect()
    } else {
        s.chars().flat_map(char::to_lowercase).collect()
    };
    let (mut t, mut p) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(LikeTok::Any) => {
                backtrack = Some((p, t));
                p += 1;
                continue;
            }
            Some(LikeTok::One) => {
                t += 1;
                p += 1;
                continue;
            }
            Some(LikeTok::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
                continue;
            }
            _ => {}
        }
        match backtrack {
            Some((bp, bt)) => {
                p = bp + 1;
                t = bt + 1;
                backtrack = Some((bp, bt + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|tok| *tok == LikeTok::Any)
}

/// A precomputed ORDER BY key value.
#[derive(Debug, Clone)]
enum SortVal<'o> {
    Null,
    Num(f64),
    Int(i64),
    /// Compared case-insensitively.
    Text(Cow<'o, str>),
    /// Compared byte-wise (ids).
    Bytes(Cow<'o, str>),
}

fn sort_val<'o>(v: FieldValue<'o>, ty: FieldType) -> SortVal<'o> {
    let id_like = matches!(ty, FieldType::Id | FieldType::Reference);
    let text = |c: Cow<'o, str>| if id_like { SortVal::Bytes(c) } else { SortVal::Text(c) };
    match v {
        FieldValue::Stored(r) => match r {
            ValueRef::Null => SortVal::Null,
            ValueRef::Str(s) => text(Cow::Borrowed(s)),
            other => scalar_sort_val(other),
        },
        FieldValue::Computed(Value::Str(s)) => text(Cow::Owned(s)),
        FieldValue::Computed(other) => scalar_sort_val(other.as_ref()),
    }
}

fn scalar_sort_val(v: ValueRef<'_>) -> SortVal<'static> {
    match v {
        ValueRef::Null | ValueRef::Str(_) => SortVal::Null,
        ValueRef::Bool(b) => SortVal::Int(i64::from(b)),
        ValueRef::Int(i) => SortVal::Int(i),
        ValueRef::Double(d) => SortVal::Num(d),
        ValueRef::Date(d) => SortVal::Int(i64::from(d)),
        ValueRef::DateTime(t) => SortVal::Int(t),
        ValueRef::Time(t) => SortVal::Int(i64::from(t)),
    }
}

fn cmp_non_null(a: &SortVal<'_>, b: &SortVal<'_>) -> Ordering {
    match (a, b) {
        (SortVal::Int(x), SortVal::Int(y)) => x.cmp(y),
        (SortVal::Num(x), SortVal::Num(y)) => x.total_cmp(y),
        (SortVal::Int(x), SortVal::Num(y)) => (*x as f64).total_cmp(y),
        (SortVal::Num(x), SortVal::Int(y)) => x.total_cmp(&(*y as f64)),
        (SortVal::Bytes(x), SortVal::Bytes(y)) => x.as_bytes().cmp(y.as_bytes()),
        (SortVal::Text(x), SortVal::Text(y)) => {
            let ord = if x.is_ascii() && y.is_ascii() {
                x.bytes().map(|c| c.to_ascii_lowercase()).cmp(y.bytes().map(|c| c.to_ascii_lowercase()))
            } else {
                x.to_lowercase().cmp(&y.to_lowercase())
            };
            ord.then_with(|| x.cmp(y))
        }
        _ => Ordering::Equal,
    }
}

/// Stable sort of `rows` by `keys`: keys are extracted once per row, then indices are sorted.
pub fn sort_rows(org: &Org, table: &ObjectTable, rows: &mut Vec<Row>, keys: &[OrderKey]) {
    if keys.is_empty() || rows.len() < 2 {
        return;
    }
    let k = keys.len();
    let mut vals: Vec<SortVal<'_>> = Vec::with_capacity(rows.len() * k);
    for row in rows.iter() {
        for key in keys {
            vals.push(sort_val(read(org, table, row, &key.path), key.path.field_type));
        }
    }
    let mut order: Vec<u32> = (0..rows.len() as u32).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (a as usize * k, b as usize * k);
        for (i, key) in keys.iter().enumerate() {
            let (x, y) = (&vals[a + i], &vals[b + i]);
            let ord = match (matches!(x, SortVal::Null), matches!(y, SortVal::Null)) {
                (true, true) => Ordering::Equal,
                (true, false) => {
                    if key.nulls_first {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                }
                (false, true) => {
                    if key.nulls_first {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                }
                (false, false) => {
                    let o = cmp_non_null(x, y);
                    if key.descending { o.reverse() } else { o }
                }
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });
    drop(vals);
    let sorted: Vec<Row> = order.iter().map(|&i| rows[i as usize].clone()).collect();
    *rows = sorted;
}

/// Runs an aggregate query over `rows`, producing one synthetic row per group whose slot `i`
/// holds column `i`.
pub fn aggregate(org: &Org, table: &ObjectTable, rows: &[Row], columns: &[AggColumn], group_by: &[FieldPath]) -> Vec<Row> {
    // Groups in first-seen order, keyed by the rendered group values.
    let mut groups: Vec<(Vec<Value>, Vec<Acc>)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for row in rows {
        let key_vals: Vec<Value> = group_by.iter().map(|g| read(org, table, row, g).as_ref().to_owned()).collect();
        let key = format!("{key_vals:?}");
        let g = *index.entry(key).or_insert_with(|| {
            groups.push((key_vals, columns.iter().map(|_| Acc::default()).collect()));
            groups.len() - 1
        });
        for (c, col) in columns.iter().enumerate() {
            if let AggKind::Func { func, arg } = &col.kind {
                let v = read(org, table, row, arg);
                groups[g].1[c].add(*func, v.as_ref());
            }
        }
    }
    if groups.is_empty() && group_by.is_empty() {
        groups.push((Vec::new(), columns.iter().map(|_| Acc::default()).collect()));
    }
    groups
        .into_iter()
        .map(|(key_vals, accs)| {
            let values = columns.iter().zip(accs).enumerate().map(|(i, (col, acc))| {
                let v = match &col.kind {
                    AggKind::Group(path) => {
                        let gi = group_by.iter().position(|g| g.display == path.display).unwrap_or(0);
                        key_vals.get(gi).cloned().unwrap_or(Value::Null)
                    }
                    AggKind::Func { func, .. } => acc.finish(*func),
                };
                (i as u16, v)
            });
            Row::from_values(values)
        })
        .collect()
}

#[derive(Debug, Default)]
struct Acc {
    count: i64,
    sum: f64,
    min: Option<Value>,
    max: Option<Value>,
    distinct: std::collections::HashSet<String>,
}

impl Acc {
    fn add(&mut self, func: AggFn, v: ValueRef<'_>) {
        if v.is_null() {
            return;
        }
        self.count += 1;
        match func {
            AggFn::Sum | AggFn::Avg => self.sum += v.as_f64().unwrap_or(0.0),
            AggFn::CountDistinct => {
                self.distinct.insert(format!("{v:?}").to_lowercase());
            }
            AggFn::Min | AggFn::Max => {
                let new = v.to_owned();
                let slot = if func == AggFn::Min { &mut self.min } else { &mut self.max };
                let replace = match slot {
                    None => true,
                    Some(cur) => {
                        let o = cmp_non_null(&scalar_or_text(new.as_ref()), &scalar_or_text(cur.as_ref()));
                        if func == AggFn::Min { o == Ordering::Less } else { o == Ordering::Greater }
                    }
                };
                if replace {
                    *slot = Some(new);
                }
            }
            AggFn::Count => {}
        }
    }

    fn finish(self, func: AggFn) -> Value {
        match func {
            AggFn::Count => Value::Int(self.count),
            AggFn::CountDistinct => Value::Int(self.distinct.len() as i64),
            AggFn::Sum if self.count == 0 => Value::Null,
            AggFn::Sum => Value::Double(self.sum),
            AggFn::Avg if self.count == 0 => Value::Null,
            AggFn::Avg => Value::Double(self.sum / self.count as f64),
            AggFn::Min => self.min.unwrap_or(Value::Null),
            AggFn::Max => self.max.unwrap_or(Value::Null),
        }
    }
}

fn scalar_or_text(v: ValueRef<'_>) -> SortVal<'_> {
    match v {
        ValueRef::Str(s) => SortVal::Text(Cow::Borrowed(s)),
        other => scalar_sort_val(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soql::resolve::like_pattern;

    #[test]
    fn like_matches_wildcards_case_insensitively() {
        let m = |s: &str, p: &str| like(s, &like_pattern(p));
        assert!(m("Acme Corp", "acme%"));
        assert!(m("Acme Corp", "%CORP"));
        assert!(m("Acme Corp", "%me c%"));
        assert!(m("Acme", "A_me"));
        assert!(!m("Acme", "A_e"));
        assert!(m("", "%"));
        assert!(!m("abc", "abd%"));
        assert!(m("100%", "100\\%"));
        assert!(!m("1000", "100\\%"));
        assert!(m("aXbXc", "%x%x%"));
        assert!(m("Ünïcode", "ü%E"));
    }

    #[test]
    fn comparisons_follow_soql_null_semantics() {
        let t = Operand::Text("acme".into());
        assert!(compare(ValueRef::Str("ACME"), CmpOp::Eq, &t));
        assert!(compare(ValueRef::Null, CmpOp::Ne, &t));
        assert!(!compare(ValueRef::Null, CmpOp::Lt, &t));
        assert!(compare(ValueRef::Null, CmpOp::Eq, &Operand::Null));
        assert!(compare(ValueRef::Int(5), CmpOp::Ge, &Operand::Num(5.0)));
        assert!(compare(ValueRef::DateTime(10), CmpOp::Eq, &Operand::Range(0, 11)));
        assert!(compare(ValueRef::DateTime(11), CmpOp::Gt, &Operand::Range(0, 11)));
        assert!(compare(ValueRef::DateTime(-1), CmpOp::Lt, &Operand::Range(0, 11)));
        let id = Operand::Id("001Dn0000000001".into());
        assert!(compare(ValueRef::Str("001Dn0000000001AAA"), CmpOp::Eq, &id));
        assert!(!compare(ValueRef::Str("001dn0000000001AAA"), CmpOp::Eq, &id));
    }
}
