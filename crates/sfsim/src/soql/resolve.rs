//! Resolution of a parsed statement against the org's metadata, with Salesforce's errors.

use chrono::{Datelike, Duration, NaiveDate};
use tidemark_core::{FieldType, SfId};

use super::SoqlError;
use super::ast::{AggFn, CondExpr, Literal, PathExpr, SelectItem, Statement};
use super::lexer::CmpOp;
use super::plan::{AggColumn, AggKind, FieldLookup, FieldPath, LikeTok, Operand, OrderKey, OutNode, Pred, Selection};
use crate::org::Org;
use crate::schema::{FieldDef, ObjectDef};
use crate::value::{date_to_days, parse_date, parse_datetime, parse_time};

/// Largest OFFSET Salesforce accepts.
pub const MAX_OFFSET: u64 = 2_000;

const CUSTOM_FIELD_HINT: &str = "If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.";
const CUSTOM_REL_HINT: &str = "If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.";
const CUSTOM_OBJECT_HINT: &str = "If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.";

/// Everything [`super::SoqlQuery`] holds besides the text.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub object: String,
    pub selection: Selection,
    pub filter: Option<Pred>,
    pub order_by: Vec<OrderKey>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub has_compound: bool,
    pub has_subquery: bool,
    pub has_group_by: bool,
}

pub struct Resolver<'a> {
    pub org: &'a Org,
    pub src: &'a str,
    pub today: NaiveDate,
}

impl<'a> Resolver<'a> {
    fn err(&self, offset: usize, code: &str, detail: &str) -> SoqlError {
        SoqlError::located(self.src, offset, code, detail)
    }

    pub fn resolve(&self, stmt: &Statement) -> Result<Resolved, SoqlError> {
        let table = self.org.table(&stmt.from).ok_or_else(|| {
            self.err(
                stmt.from_offset,
                "INVALID_TYPE",
                &format!("sObject type '{}' is not supported. {CUSTOM_OBJECT_HINT}", stmt.from),
            )
        })?;
        let def = &table.def;
        if !def.flags.queryable {
            return Err(self.err(
                stmt.from_offset,
                "INVALID_TYPE_FOR_OPERATION",
                &format!("entity type {} does not support query", def.name),
            ));
        }
        let has_aggregate = stmt.select.iter().any(|s| matches!(s, SelectItem::Aggregate { .. }));
        let mut has_compound = false;
        let mut has_subquery = false;
        let selection = if let Some(SelectItem::CountStar { offset }) =
            stmt.select.iter().find(|s| matches!(s, SelectItem::CountStar { .. }))
        {
            if stmt.select.len() > 1 || !stmt.group_by.is_empty() {
                return Err(self.err(*offset, "MALFORMED_QUERY", "COUNT() must be the only element in the SELECT list"));
            }
            Selection::CountOnly
        } else if has_aggregate || !stmt.group_by.is_empty() {
            self.aggregate_selection(def, stmt)?
        } else {
            let mut columns: Vec<FieldPath> = Vec::new();
            let mut tree = Vec::new();
            for item in &stmt.select {
                match item {
                    SelectItem::Field(p) => {
                        let path = self.path(def, p)?;
                        if columns.iter().any(|c| c.display.eq_ignore_ascii_case(&path.display)) {
                            return Err(self.err(
                                p.offset,
                                "MALFORMED_QUERY",
                                &format!("duplicate field selected: {}", p.dotted()),
                            ));
                        }
                        has_compound |= path.field_type.is_compound();
                        insert_out(&mut tree, def, self.org, &path);
                        columns.push(path);
                    }
                    SelectItem::Subquery(sub) => {
                        has_subquery = true;
                        tree.push(self.subquery(def, sub)?);
                    }
                    SelectItem::CountStar { .. } | SelectItem::Aggregate { .. } => unreachable!("handled above"),
                }
            }
            Selection::Records { columns, tree }
        };
        let filter = stmt.where_.as_ref().map(|w| self.condition(def, w)).transpose()?;
        let mut order_by = Vec::new();
        for item in &stmt.order_by {
            let path = self.path(def, &item.path)?;
            if !self.leaf(def, &path).sortable {
                return Err(self.err(
                    item.path.offset,
                    "INVALID_FIELD",
                    &format!("field '{}' can not be sorted in a query call", path.field.name),
                ));
            }
            if let Selection::Aggregate { group_by, .. } = &selection
                && !group_by.iter().any(|g| g.display.eq_ignore_ascii_case(&path.display))
            {
                return Err(self.err(
                    item.path.offset,
                    "MALFORMED_QUERY",
                    &format!("Ordered field must be grouped or aggregated: {}", path.field.name),
                ));
            }
            // Salesforce's default: nulls first ascending, last descending.
            let nulls_first = item.nulls_first.unwrap_or(!item.descending);
            order_by.push(OrderKey { path, descending: item.descending, nulls_first });
        }
        let offset = match stmt.offset {
            Some((n, _)) if n > MAX_OFFSET => {
                return Err(SoqlError {
                    error_code: "NUMBER_OUTSIDE_VALID_RANGE".to_owned(),
                    message: format!("Maximum SOQL offset allowed is {MAX_OFFSET}"),
                });
            }
            Some((n, _)) => Some(n),
            None => None,
        };
        Ok(Resolved {
            object: def.name.clone(),
            selection,
            filter,
            order_by,
            limit: stmt.limit,
            offset,
            has_compound,
            has_subquery,
            has_group_by: !stmt.group_by.is_empty(),
        })
    }

    /// Resolves `(SELECT … FROM Children)` against the child object the relationship names.
    fn subquery(&self, parent: &ObjectDef, sub: &Statement) -> Result<OutNode, SoqlError> {
        let found = self.org.tables().iter().find_map(|t| {
            t.def.fields.iter().enumerate().find_map(|(i, f)| {
                let points_here = f.reference_to.iter().any(|r| r == &parent.name);
                let name = crate::api::metadata::child_relationship_name(&t.def.name, &f.name, &parent.name)?;
                (points_here && name.eq_ignore_ascii_case(&sub.from)).then_some((t, i, name))
            })
        });
        let Some((child, index, key)) = found else {
            return Err(self.err(
                sub.from_offset,
                "INVALID_TYPE",
                &format!("Didn't understand relationship '{}' in FROM part of query call. {CUSTOM_REL_HINT}", sub.from),
            ));
        };
        let mut stmt = sub.clone();
        stmt.from = child.def.name.clone();
        let plan = self.resolve(&stmt)?;
        if plan.has_subquery || !matches!(plan.selection, Selection::Records { .. }) {
            return Err(self.err(sub.from_offset, "MALFORMED_QUERY", "Nesting of semi join sub-selects is not supported"));
        }
        Ok(OutNode::Children { key, reference: FieldLookup::new(&child.def, index), plan: Box::new(plan) })
    }

    fn aggregate_selection(&self, def: &ObjectDef, stmt: &Statement) -> Result<Selection, SoqlError> {
        let group_by = stmt.group_by.iter().map(|p| self.path(def, p)).collect::<Result<Vec<_>, _>>()?;
        let mut columns = Vec::new();
        let mut expr_n = 0;
        for item in &stmt.select {
            match item {
                SelectItem::Field(p) => {
                    let path = self.path(def, p)?;
                    if !group_by.iter().any(|g| g.display.eq_ignore_ascii_case(&path.display)) {
                        return Err(self.err(
                            p.offset,
                            "MALFORMED_QUERY",
                            &format!("Field must be grouped or aggregated: {}", path.field.name),
                        ));
                    }
                    columns.push(AggColumn { key: path.field.name.clone(), kind: AggKind::Group(path) });
                }
                SelectItem::Aggregate { func, arg, alias, .. } => {
                    let path = self.path(def, arg)?;
                    let numeric_only = matches!(func, AggFn::Sum | AggFn::Avg);
                    if numeric_only && !path.field_type.is_numeric() {
                        return Err(self.err(
                            arg.offset,
                            "MALFORMED_QUERY",
                            &format!("field {} does not support aggregate operator {:?}", path.field.name, func)
                                .replace("Sum", "SUM")
                                .replace("Avg", "AVG"),
                        ));
                    }
                    let key = alias.clone().unwrap_or_else(|| {
                        let k = format!("expr{expr_n}");
                        expr_n += 1;
                        k
                    });
                    columns.push(AggColumn { key, kind: AggKind::Func { func: *func, arg: path } });
                }
                SelectItem::CountStar { offset } => {
                    return Err(self.err(*offset, "MALFORMED_QUERY", "COUNT() must be the only element in the SELECT list"));
                }
                SelectItem::Subquery(sub) => {
                    return Err(self.err(sub.from_offset, "MALFORMED_QUERY", "unexpected token: 'SELECT'"));
                }
            }
        }
        Ok(Selection::Aggregate { columns, group_by })
    }

    /// The field definition a path ends in, as compiled.
    fn leaf<'d>(&self, root: &'d ObjectDef, path: &FieldPath) -> &'d FieldDef
    where
        'a: 'd,
    {
        let def = match self.org.table(&path.field.object) {
            Some(t) => &t.def,
            None => root,
        };
        path.field.resolve(def).unwrap_or(&root.fields[0])
    }

    /// Resolves `a.b.c` from `root`: relationships, then a field.
    pub fn path(&self, root: &ObjectDef, p: &PathExpr) -> Result<FieldPath, SoqlError> {
        let mut segments: &[String] = &p.segments;
        // `Account.Name FROM Account`: a leading object-name qualifier.
        if segments.len() > 1 && segments[0].eq_ignore_ascii_case(&root.name) && root.relationship(&segments[0]).is_none() {
            segments = &segments[1..];
        }
        let mut current: Vec<&ObjectDef> = vec![root];
        let mut hops = Vec::new();
        let mut display = Vec::new();
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            if last {
                let Some((def, idx)) = find_in(&current, |d| d.field_index(seg)) else {
                    let entity = current.first().map(|d| d.name.as_str()).unwrap_or("");
                    return Err(self.err(
                        p.offset,
                        "INVALID_FIELD",
                        &format!("No such column '{seg}' on entity '{entity}'. {CUSTOM_FIELD_HINT}"),
                    ));
                };
                let field = &def.fields[idx];
                display.push(field.name.clone());
                return Ok(FieldPath {
                    hops,
                    field: FieldLookup::new(def, idx),
                    field_type: field.field_type,
                    scale: field.scale,
                    display: display.join("."),
                });
            }
            let Some((def, idx)) = find_in(&current, |d| {
                d.fields.iter().position(|f| f.relationship_name.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(seg)))
            }) else {
                return Err(self.err(
                    p.offset,
                    "INVALID_FIELD",
                    &format!("Didn't understand relationship '{seg}' in field path. {CUSTOM_REL_HINT}"),
                ));
            };
            let field = &def.fields[idx];
            display.push(field.relationship_name.clone().unwrap_or_else(|| seg.clone()));
            hops.push(FieldLookup::new(def, idx));
            current = field.reference_to.iter().filter_map(|o| self.org.table(o)).map(|t| &t.def).collect();
        }
        Err(self.err(p.offset, "MALFORMED_QUERY", "unexpected token: '.'"))
    }

    fn condition(&self, def: &ObjectDef, c: &CondExpr) -> Result<Pred, SoqlError> {
        Ok(match c {
            CondExpr::And(parts) => Pred::And(parts.iter().map(|p| self.condition(def, p)).collect::<Result<_, _>>()?),
            CondExpr::Or(parts) => Pred::Or(parts.iter().map(|p| self.condition(def, p)).collect::<Result<_, _>>()?),
            CondExpr::Not(inner) => Pred::Not(Box::new(self.condition(def, inner)?)),
            CondExpr::Cmp { path, op, value, value_offset } => {
                let fp = self.filter_path(def, path)?;
                let value = self.operand(&fp, value, *value_offset)?;
                if matches!(value, Operand::Null) && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                    return Err(self.err(*value_offset, "MALFORMED_QUERY", &format!("unexpected token: '{}'", "null")));
                }
                Pred::Cmp { path: fp, op: *op, value }
            }
            CondExpr::In { path, negated, values } => {
                let fp = self.filter_path(def, path)?;
                let values = values.iter().map(|(v, at)| self.operand(&fp, v, *at)).collect::<Result<Vec<_>, _>>()?;
                if values.iter().any(|v| matches!(v, Operand::Range(..))) {
                    return Err(self.err(path.offset, "MALFORMED_QUERY", "Date literals are not allowed in IN"));
                }
                Pred::In { path: fp, negated: *negated, values }
            }
            CondExpr::Like { path, pattern, value_offset } => {
                let fp = self.filter_path(def, path)?;
                if !fp.field_type.is_textual() || matches!(fp.field_type, FieldType::Id | FieldType::Reference) {
                    return Err(self.err(
                        *value_offset,
                        "INVALID_FIELD",
                        &format!(
                            "Invalid operator on {} field: LIKE",
                            fp.field_type.soap_type().trim_start_matches("xsd:").trim_start_matches("tns:")
                        ),
                    ));
                }
                Pred::Like { path: fp, pattern: like_pattern(pattern) }
            }
        })
    }

    fn filter_path(&self, def: &ObjectDef, p: &PathExpr) -> Result<FieldPath, SoqlError> {
        let fp = self.path(def, p)?;
        if !self.leaf(def, &fp).filterable {
            return Err(self.err(
                p.offset,
                "INVALID_FIELD",
                &format!("field '{}' can not be filtered in a query call", fp.field.name),
            ));
        }
        Ok(fp)
    }

    fn operand(&self, fp: &FieldPath, lit: &Literal, at: usize) -> Result<Operand, SoqlError> {
        let ty = fp.field_type;
        let name = &fp.field.name;
        let wrong_type = |type_name: &str, quoted: bool| {
            let tail = if quoted { "should be enclosed in quotes" } else { "should not be enclosed in quotes" };
            self.err(
                at,
                "INVALID_FIELD",
                &format!("value of filter criterion for field '{name}' must be of type {type_name} and {tail}"),
            )
        };
        if matches!(lit, Literal::Null) {
            return Ok(Operand::Null);
        }
        Ok(match ty {
            FieldType::Id | FieldType::Reference => match lit {
                Literal::Str(s) => match SfId::parse(s) {
                    Ok(id) => Operand::Id(id.short().to_owned()),
                    Err(_) => {
                        return Err(self.err(at, "INVALID_QUERY_FILTER_OPERATOR", &format!("invalid ID field: {s}")));
                    }
                },
                _ => return Err(wrong_type("id", true)),
            },
            FieldType::Boolean => match lit {
                Literal::Bool(b) => Operand::Bool(*b),
                _ => return Err(wrong_type("boolean", false)),
            },
            t if t.is_numeric() => match lit {
                Literal::Number(n) => Operand::Num(n.parse().map_err(|_| wrong_type(numeric_type_name(t), false))?),
                _ => return Err(wrong_type(numeric_type_name(t), false)),
            },
            FieldType::Date => match lit {
                Literal::Date(d) => Operand::Date(parse_date(d).ok_or_else(|| wrong_type("date", false))?),
                Literal::Relative(w, n) => {
                    let (from, to) = relative_range(self.today, w, *n);
                    Operand::Range(i64::from(date_to_days(from)), i64::from(date_to_days(to)))
                }
                _ => return Err(wrong_type("date", false)),
            },
            FieldType::Datetime => match lit {
                Literal::DateTime(d) => Operand::DateTime(parse_datetime(d).ok_or_else(|| wrong_type("dateTime", false))?),
                Literal::Relative(w, n) => {
                    let (from, to) = relative_range(self.today, w, *n);
                    let ms = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis()).unwrap_or(0);
                    Operand::Range(ms(from), ms(to))
                }
                _ => return Err(wrong_type("dateTime", false)),
            },
            FieldType::Time => match lit {
                Literal::Str(s) => Operand::Time(parse_time(s).ok_or_else(|| wrong_type("time", false))?),
                _ => return Err(wrong_type("time", false)),
            },
            _ => match lit {
                Literal::Str(s) => Operand::Text(s.to_lowercase()),
                _ => return Err(wrong_type("string", true)),
            },
        })
    }
}

fn numeric_type_name(t: FieldType) -> &'static str {
    match t {
        FieldType::Int => "int",
        FieldType::Long => "long",
        FieldType::Currency => "currency",
        FieldType::Percent => "percent",
        _ => "double",
    }
}

fn find_in<'d>(defs: &[&'d ObjectDef], f: impl Fn(&ObjectDef) -> Option<usize>) -> Option<(&'d ObjectDef, usize)> {
    defs.iter().find_map(|d| f(d).map(|i| (*d, i)))
}

/// Adds `path` to the REST output tree, sharing parent nodes with earlier paths.
fn insert_out(tree: &mut Vec<OutNode>, root: &ObjectDef, org: &Org, path: &FieldPath) {
    let mut level = tree;
    let mut def = root;
    for hop in &path.hops {
        let rel = hop.resolve(def).and_then(|f| f.relationship_name.clone()).unwrap_or_else(|| hop.name.clone());
        let pos = level.iter().position(|n| matches!(n, OutNode::Parent { key, .. } if *key == rel));
        let pos = match pos {
            Some(p) => p,
            None => {
                level.push(OutNode::Parent { key: rel, hop: hop.clone(), children: Vec::new() });
                level.len() - 1
            }
        };
        def = hop.resolve(def).and_then(|f| f.reference_to.first()).and_then(|o| org.table(o)).map(|t| &t.def).unwrap_or(def);
        let OutNode::Parent { children, .. } = &mut level[pos] else { unreachable!("just matched a parent") };
        level = children;
    }
    level.push(OutNode::Field { field: path.field.clone() });
}

/// `LIKE` pattern tokens; `\%` and `\_` are literal.
pub fn like_pattern(p: &str) -> Vec<LikeTok> {
    let mut out = Vec::new();
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => out.push(LikeTok::Any),
            '_' => out.push(LikeTok::One),
            '\\' => match chars.next() {
                Some(e) => out.extend(e.to_lowercase().map(LikeTok::Char)),
                None => out.push(LikeTok::Char('\\')),
            },
            c => out.extend(c.to_lowercase().map(LikeTok::Char)),
        }
    }
    out
}

/// Half-open day range `[from, to)` of a relative date literal, in the org's time zone (GMT).
pub fn relative_range(today: NaiveDate, word: &str, n: Option<i64>) -> (NaiveDate, NaiveDate) {
    let n = n.unwrap_or(0);
    let d = |k: i64| today + Duration::days(k);
    let week_start = today - Duration::days(i64::from(today.weekday().num_days_from_sunday()));
    let month_start = |offset: i32| {
        let total = today.year() * 12 + today.month0() as i32 + offset;
        NaiveDate::from_ymd_opt(total.div_euclid(12), total.rem_euclid(12) as u32 + 1, 1).unwrap_or(today)
    };
    let year_start = |offset: i32| NaiveDate::from_ymd_opt(today.year() + offset, 1, 1).unwrap_or(today);
    match word {
        "YESTERDAY" => (d(-1), d(0)),
        "TOMORROW" => (d(1), d(2)),
        "LAST_WEEK" => (week_start - Duration::days(7), week_start),
        "THIS_WEEK" => (week_start, week_start + Duration::days(7)),
        "NEXT_WEEK" => (week_start + Duration::days(7), week_start + Duration::days(14)),
        "LAST_MONTH" => (month_start(-1), month_start(0)),
        "THIS_MONTH" => (month_start(0), month_start(1)),
        "NEXT_MONTH" => (month_start(1), month_start(2)),
        "LAST_YEAR" => (year_start(-1), year_start(0)),
        "THIS_YEAR" => (year_start(0), year_start(1)),
        "NEXT_YEAR" => (year_start(1), year_start(2)),
        "LAST_90_DAYS" => (d(-90), d(1)),
        "NEXT_90_DAYS" => (d(1), d(91)),
        "LAST_N_DAYS" => (d(-n), d(1)),
        "NEXT_N_DAYS" => (d(1), d(n + 1)),
        "N_DAYS_AGO" => (d(-n), d(-n + 1)),
        // TODAY
        _ => (d(0), d(1)),
    }
}
