//! A recursive-descent parser for the SOQL subset sync tools send.

use super::SoqlError;
use super::ast::{AggFn, CondExpr, Literal, OrderItem, PathExpr, SelectItem, Statement};
use super::lexer::{TokKind, Token, tokenize};

/// Longest statement Salesforce accepts.
pub const MAX_STATEMENT_CHARS: usize = 100_000;
/// Longest string literal in a WHERE clause.
pub const MAX_LITERAL_CHARS: usize = 4_000;

/// Words that end a field list or a condition: they can never be read as a field name or alias.
const RESERVED: &[&str] = &[
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "GROUP", "BY", "LIMIT", "OFFSET", "HAVING", "ASC",
    "DESC", "NULLS", "WITH", "USING", "FOR", "INCLUDES", "EXCLUDES", "NULL", "TRUE", "FALSE",
];

pub fn parse(src: &str) -> Result<Statement, SoqlError> {
    if src.chars().count() > MAX_STATEMENT_CHARS {
        return Err(SoqlError::malformed(format!(
            "Query is too long. The SOQL statement exceeds the {MAX_STATEMENT_CHARS} character limit."
        )));
    }
    let toks = tokenize(src)?;
    let mut p = Parser { src, toks, pos: 0 };
    let stmt = p.statement()?;
    p.expect_eof()?;
    Ok(stmt)
}

struct Parser<'s> {
    src: &'s str,
    toks: Vec<Token>,
    pos: usize,
}

impl<'s> Parser<'s> {
    fn peek(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, n: usize) -> &Token {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn unexpected(&self, tok: &Token) -> SoqlError {
        SoqlError::located(self.src, tok.start, "MALFORMED_QUERY", &format!("unexpected token: '{}'", tok.display(self.src)))
    }

    fn at_kw(&self, kw: &str) -> bool {
        self.peek().is_kw(self.src, kw)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.at_kw(kw) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), SoqlError> {
        if self.eat_kw(kw) { Ok(()) } else { Err(self.unexpected(self.peek())) }
    }

    fn expect(&mut self, kind: TokKind) -> Result<Token, SoqlError> {
        if self.peek().kind == kind { Ok(self.bump()) } else { Err(self.unexpected(self.peek())) }
    }

    fn expect_eof(&self) -> Result<(), SoqlError> {
        if self.peek().kind == TokKind::Eof { Ok(()) } else { Err(self.unexpected(self.peek())) }
    }

    fn is_reserved(&self, tok: &Token) -> bool {
        tok.kind == TokKind::Ident && RESERVED.iter().any(|r| tok.text(self.src).eq_ignore_ascii_case(r))
    }

    /// A name that is not a reserved word.
    fn name(&mut self) -> Result<Token, SoqlError> {
        let t = self.peek().clone();
        if t.kind != TokKind::Ident || self.is_reserved(&t) {
            return Err(self.unexpected(&t));
        }
        Ok(self.bump())
    }

    fn path(&mut self) -> Result<PathExpr, SoqlError> {
        let first = self.name()?;
        let mut segments = vec![first.text(self.src).to_owned()];
        while self.peek().kind == TokKind::Dot {
            self.bump();
            let t = self.peek().clone();
            if t.kind != TokKind::Ident {
                return Err(self.unexpected(&t));
            }
            self.bump();
            segments.push(t.text(self.src).to_owned());
        }
        Ok(PathExpr { segments, offset: first.start })
    }

    fn statement(&mut self) -> Result<Statement, SoqlError> {
        self.expect_kw("SELECT")?;
        let select = self.select_list()?;
        self.expect_kw("FROM")?;
        let from_tok = self.name()?;
        // An optional alias after the object name is accepted and ignored.
        if self.peek().kind == TokKind::Ident && !self.is_reserved(self.peek()) {
            self.bump();
        }
        if self.eat_kw("USING") {
            self.expect_kw("SCOPE")?;
            self.name()?;
        }
        let where_ = if self.eat_kw("WHERE") { Some(self.condition()?) } else { None };
        let mut group_by = Vec::new();
        if self.at_kw("GROUP") {
            self.bump();
            self.expect_kw("BY")?;
            group_by.push(self.path()?);
            while self.peek().kind == TokKind::Comma {
                self.bump();
                group_by.push(self.path()?);
            }
        }
        let mut order_by = Vec::new();
        if self.at_kw("ORDER") {
            self.bump();
            self.expect_kw("BY")?;
            order_by.push(self.order_item()?);
            while self.peek().kind == TokKind::Comma {
                self.bump();
                order_by.push(self.order_item()?);
            }
        }
        let limit = if self.eat_kw("LIMIT") { Some(self.integer()?.0) } else { None };
        let offset = if self.eat_kw("OFFSET") { Some(self.integer()?) } else { None };
        if self.at_kw("FOR") {
            self.bump();
            if !(self.eat_kw("VIEW") || self.eat_kw("REFERENCE") || self.eat_kw("UPDATE")) {
                return Err(self.unexpected(self.peek()));
            }
        }
        Ok(Statement {
            select,
            from: from_tok.text(self.src).to_owned(),
            from_offset: from_tok.start,
            where_,
            group_by,
            order_by,
            limit,
            offset,
        })
    }

    fn integer(&mut self) -> Result<(u64, usize), SoqlError> {
        let t = self.peek().clone();
        match (&t.kind, t.text(self.src).parse::<u64>()) {
            (TokKind::Number, Ok(n)) => {
                self.bump();
                Ok((n, t.start))
            }
            _ => Err(self.unexpected(&t)),
        }
    }

    fn select_list(&mut self) -> Result<Vec<SelectItem>, SoqlError> {
        let mut items = vec![self.select_item()?];
        while self.peek().kind == TokKind::Comma {
            self.bump();
            items.push(self.select_item()?);
        }
        Ok(items)
    }

    fn select_item(&mut self) -> Result<SelectItem, SoqlError> {
        let t = self.peek().clone();
        if t.kind == TokKind::LParen {
            self.bump();
            if !self.at_kw("SELECT") {
                return Err(self.unexpected(self.peek()));
            }
            let sub = self.statement()?;
            self.expect(TokKind::RParen)?;
            return Ok(SelectItem::Subquery(Box::new(sub)));
        }
        if t.kind == TokKind::Ident && self.peek_at(1).kind == TokKind::LParen {
            let Some(func) = AggFn::from_name(t.text(self.src)) else {
                return Err(self.unexpected(self.peek_at(1)));
            };
            self.bump();
            self.bump();
            if func == AggFn::Count && self.peek().kind == TokKind::RParen {
                self.bump();
                return Ok(SelectItem::CountStar { offset: t.start });
            }
            let arg = self.path()?;
            self.expect(TokKind::RParen)?;
            let alias = if self.peek().kind == TokKind::Ident && !self.is_reserved(self.peek()) {
                Some(self.bump().text(self.src).to_owned())
            } else {
                None
            };
            return Ok(SelectItem::Aggregate { func, arg, alias, offset: t.start });
        }
        Ok(SelectItem::Field(self.path()?))
    }

    fn order_item(&mut self) -> Result<OrderItem, SoqlError> {
        let path = self.path()?;
        let descending = if self.eat_kw("DESC") {
            true
        } else {
            self.eat_kw("ASC");
            false
        };
        let nulls_first = if self.eat_kw("NULLS") {
            if self.eat_kw("FIRST") {
                Some(true)
            } else if self.eat_kw("LAST") {
                Some(false)
            } else {
                return Err(self.unexpected(self.peek()));
            }
        } else {
            None
        };
        Ok(OrderItem { path, descending, nulls_first })
    }

    /// SOQL requires parentheses when AND and OR are mixed at one level.
    fn condition(&mut self) -> Result<CondExpr, SoqlError> {
        let first = self.unary()?;
        let joiner = if self.at_kw("AND") {
            "AND"
        } else if self.at_kw("OR") {
            "OR"
        } else {
            return Ok(first);
        };
        let mut parts = vec![first];
        while self.eat_kw(joiner) {
            parts.push(self.unary()?);
        }
        if self.at_kw("AND") || self.at_kw("OR") {
            return Err(self.unexpected(self.peek()));
        }
        Ok(if joiner == "AND" { CondExpr::And(parts) } else { CondExpr::Or(parts) })
    }

    fn unary(&mut self) -> Result<CondExpr, SoqlError> {
        if self.eat_kw("NOT") {
            return Ok(CondExpr::Not(Box::new(self.unary()?)));
        }
        if self.peek().kind == TokKind::LParen {
            self.bump();
            let inner = self.condition()?;
            self.expect(TokKind::RParen)?;
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<CondExpr, SoqlError> {
        let path = self.path()?;
        let t = self.peek().clone();
        if let TokKind::Op(op) = t.kind {
            self.bump();
            let value_offset = self.peek().start;
            let value = self.literal()?;
            return Ok(CondExpr::Cmp { path, op, value, value_offset });
        }
        if self.eat_kw("LIKE") {
            let v = self.peek().clone();
            let value_offset = v.start;
            return match v.kind {
                TokKind::Str(s) => {
                    self.bump();
                    Ok(CondExpr::Like { path, pattern: s, value_offset })
                }
                _ => Err(self.unexpected(&v)),
            };
        }
        let negated = self.eat_kw("NOT");
        if self.eat_kw("IN") {
            self.expect(TokKind::LParen)?;
            let mut values = Vec::new();
            loop {
                let at = self.peek().start;
                values.push((self.literal()?, at));
                if self.peek().kind == TokKind::Comma {
                    self.bump();
                    continue;
                }
                break;
            }
            self.expect(TokKind::RParen)?;
            return Ok(CondExpr::In { path, negated, values });
        }
        Err(self.unexpected(self.peek()))
    }

    fn literal(&mut self) -> Result<Literal, SoqlError> {
        let t = self.peek().clone();
        let lit = match &t.kind {
            TokKind::Str(s) => {
                if s.chars().count() > MAX_LITERAL_CHARS {
                    return Err(SoqlError::located(
                        self.src,
                        t.start,
                        "MALFORMED_QUERY",
                        &format!("String literal exceeds the maximum length of {MAX_LITERAL_CHARS} characters"),
                    ));
                }
                Literal::Str(s.clone())
            }
            TokKind::Number => Literal::Number(t.text(self.src).to_owned()),
            TokKind::Date => Literal::Date(t.text(self.src).to_owned()),
            TokKind::DateTime => Literal::DateTime(t.text(self.src).to_owned()),
            TokKind::Ident => {
                let word = t.text(self.src).to_ascii_uppercase();
                match word.as_str() {
                    "NULL" => Literal::Null,
                    "TRUE" => Literal::Bool(true),
                    "FALSE" => Literal::Bool(false),
                    _ if super::eval::is_relative_date(&word) => {
                        self.bump();
                        if word.contains("_N_") {
                            self.expect(TokKind::Colon)?;
                            let (n, _) = self.integer()?;
                            return Ok(Literal::Relative(word, Some(n as i64)));
                        }
                        return Ok(Literal::Relative(word, None));
                    }
                    _ => return Err(self.unexpected(&t)),
                }
            }
            _ => return Err(self.unexpected(&t)),
        };
        self.bump();
        Ok(lit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_statement() {
        let s = parse(
            "select Id, Account.Owner.Name, COUNT(Id) n FROM Contact c WHERE (Name LIKE 'a%' OR Email != null) \
             AND NOT Id IN ('1','2') AND CreatedDate > LAST_N_DAYS:7 AND Amount__c NOT IN (1, 2.5) \
             ORDER BY Name DESC NULLS LAST, Id LIMIT 10 OFFSET 5",
        )
        .unwrap();
        assert_eq!(s.from, "Contact");
        assert_eq!(s.select.len(), 3);
        assert!(matches!(&s.select[1], SelectItem::Field(p) if p.dotted() == "Account.Owner.Name"));
        assert!(matches!(&s.select[2], SelectItem::Aggregate { alias: Some(a), .. } if a == "n"));
        let Some(CondExpr::And(parts)) = &s.where_ else { panic!("AND expected") };
        assert_eq!(parts.len(), 4);
        assert!(matches!(&parts[0], CondExpr::Or(v) if v.len() == 2));
        assert!(matches!(&parts[1], CondExpr::Not(_)));
        assert!(matches!(&parts[2], CondExpr::Cmp { value: Literal::Relative(w, Some(7)), .. } if w == "LAST_N_DAYS"));
        assert!(matches!(&parts[3], CondExpr::In { negated: true, values, .. } if values.len() == 2));
        assert_eq!(s.order_by.len(), 2);
        assert!(s.order_by[0].descending && s.order_by[0].nulls_first == Some(false));
        assert_eq!((s.limit, s.offset.map(|o| o.0)), (Some(10), Some(5)));
    }

    #[test]
    fn count_and_subqueries() {
        let s = parse("SELECT count() FROM Account").unwrap();
        assert!(matches!(s.select[0], SelectItem::CountStar { .. }));
        let s = parse("SELECT Id, (SELECT Id FROM Contacts) FROM Account").unwrap();
        assert!(matches!(&s.select[1], SelectItem::Subquery(sub) if sub.from == "Contacts"));
    }

    #[test]
    fn syntax_errors_point_at_the_token() {
        let e = parse("SELECT Id, Name, From Account").unwrap_err();
        assert_eq!(e.error_code, "MALFORMED_QUERY");
        assert_eq!(
            e.message,
            "\nSELECT Id, Name, From Account\n                 ^\nERROR at Row:1:Column:18\nunexpected token: 'From'"
        );
        let e = parse("SELECT Id FROM Account WHERE Name = 'a' AND Id = 'b' OR Id = 'c'").unwrap_err();
        assert!(e.message.ends_with("unexpected token: 'OR'"), "{}", e.message);
        let e = parse("SELECT Id FROM Account WHERE").unwrap_err();
        assert!(e.message.ends_with("unexpected token: '<EOF>'"), "{}", e.message);
        assert!(parse("SELECT Id FROM Account LIMIT x").is_err());
    }
}
