//! How each engine spells what the statements need: quoting, literals, column types, the text
//! form of a typed value (README, "Change hash"), the change hash, and stopping the run.
//!
//! The text forms must give the bytes `crate::hash` hashes, so every engine formats values
//! itself (fixed six fractional digits, then trimmed) rather than trusting its default cast.

use chrono::NaiveDate;
use tidemark_core::models::{ColumnType, Compatibility};
use tidemark_lake::arrow::datatypes::DataType;

use super::Engine;

/// A column's type in the statements: one a file source declares (`types:`), or a lake
/// column's decimal (Salesforce numbers, exact).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SqlType {
    Declared(ColumnType),
    Decimal(u8, i8),
}

impl SqlType {
    /// The type of a lake column as the history table stores it (Arrow); `None` for a type no
    /// model column holds.
    pub fn of_arrow(t: &DataType) -> Option<SqlType> {
        Some(SqlType::Declared(match t {
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => ColumnType::String,
            DataType::Int64 => ColumnType::Bigint,
            DataType::Int32 => ColumnType::Int,
            DataType::Float64 => ColumnType::Double,
            DataType::Boolean => ColumnType::Boolean,
            DataType::Date32 => ColumnType::Date,
            DataType::Timestamp(_, _) => ColumnType::Timestamp,
            DataType::Decimal128(p, s) => return Some(SqlType::Decimal(*p, *s)),
            _ => return None,
        }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Dialect(pub Engine);

impl Dialect {
    /// Every identifier is quoted: attribute names may be reserved words (`order`, `current`).
    pub fn ident(self, s: &str) -> String {
        match self.0 {
            Engine::Spark => format!("`{}`", s.replace('`', "``")),
            _ => format!("\"{}\"", s.replace('"', "\"\"")),
        }
    }

    pub fn string(self, s: &str) -> String {
        match self.0 {
            // Spark SQL reads backslash escapes in string literals.
            Engine::Spark => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
            _ => format!("'{}'", s.replace('\'', "''")),
        }
    }

    pub fn date(self, d: NaiveDate) -> String {
        format!("DATE '{}'", d.format("%Y-%m-%d"))
    }

    pub fn text_type(self) -> &'static str {
        match self.0 {
            Engine::Spark => "STRING",
            _ => "VARCHAR",
        }
    }

    pub fn column_type(self, t: ColumnType) -> &'static str {
        match (self.0, t) {
            (Engine::Redshift, ColumnType::String) => "VARCHAR(65535)",
            (_, ColumnType::String) => self.text_type(),
            (_, ColumnType::Bigint) => "BIGINT",
            (Engine::Spark, ColumnType::Int) => "INT",
            (_, ColumnType::Int) => "INTEGER",
            (Engine::Redshift, ColumnType::Double) => "DOUBLE PRECISION",
            (_, ColumnType::Double) => "DOUBLE",
            (_, ColumnType::Boolean) => "BOOLEAN",
            (_, ColumnType::Date) => "DATE",
            // Spark reads and prints timestamps in the session time zone, set to UTC up front.
            (Engine::Trino, ColumnType::Timestamp) => "TIMESTAMP(6)",
            (_, ColumnType::Timestamp) => "TIMESTAMP",
        }
    }

    pub fn sql_type(self, t: SqlType) -> String {
        match t {
            SqlType::Declared(t) => self.column_type(t).to_owned(),
            SqlType::Decimal(p, s) => format!("DECIMAL({p}, {s})"),
        }
    }

    /// The hash column: 64 hex digits, 128 for SHA-512.
    pub fn hash_type(self) -> &'static str {
        match self.0 {
            Engine::Redshift => "VARCHAR(128)",
            _ => self.text_type(),
        }
    }

    pub fn cast_text(self, e: &str) -> String {
        format!("CAST({e} AS {})", self.text_type())
    }

    /// The README's text form of `e` (of type `t`); NULL stays NULL.
    pub fn text_form(self, e: &str, t: ColumnType) -> String {
        match t {
            ColumnType::String => e.to_owned(),
            ColumnType::Bigint | ColumnType::Int => self.cast_text(e),
            ColumnType::Boolean => format!("CASE WHEN {e} THEN 'true' WHEN NOT {e} THEN 'false' END"),
            ColumnType::Date => match self.0 {
                Engine::DuckDb => format!("strftime({e}, '%Y-%m-%d')"),
                Engine::Redshift => format!("to_char({e}, 'YYYY-MM-DD')"),
                Engine::Spark => format!("date_format({e}, 'yyyy-MM-dd')"),
                Engine::Trino => self.cast_text(e),
            },
            ColumnType::Timestamp => {
                let fixed = match self.0 {
                    Engine::DuckDb => format!("strftime({e}, '%Y-%m-%d %H:%M:%S.%f')"),
                    Engine::Redshift => format!("to_char({e}, 'YYYY-MM-DD HH24:MI:SS.US')"),
                    Engine::Spark => format!("date_format({e}, 'yyyy-MM-dd HH:mm:ss.SSSSSS')"),
                    Engine::Trino => self.cast_text(&format!("CAST({e} AS TIMESTAMP(6))")),
                };
                // Six fractional digits always, so trimming zeros never reaches the seconds.
                format!("regexp_replace(regexp_replace({fixed}, '0+$', ''), '[.]$', '')")
            }
            ColumnType::Double => self.double_text(e),
        }
    }

    /// [`Dialect::text_form`] of any column type: a decimal's text is the engine's cast, the
    /// exact value with its scale's digits (`1234.50`), as `crate::hash` writes it.
    pub fn typed_text(self, e: &str, t: SqlType) -> String {
        match t {
            SqlType::Declared(t) => self.text_form(e, t),
            SqlType::Decimal(_, _) => self.cast_text(e),
        }
    }

    /// Rust's `Display` of an f64 (positional, shortest round-trip digits, `NaN`, `inf`, `-0`)
    /// rebuilt from the engine's shortest text, which may use an exponent (`1e+20`, `1.0E-7`):
    /// the digits without leading and trailing zeros, and where the decimal point falls in them.
    fn double_text(self, e: &str) -> String {
        let s = format!("lower({})", self.cast_text(e));
        let sign = format!("CASE WHEN {s} LIKE '-%' THEN '-' ELSE '' END");
        let mantissa = format!("regexp_replace(regexp_replace({s}, 'e.*$', ''), '^[-+]', '')");
        let exponent = format!("CASE WHEN {s} LIKE '%e%' THEN CAST(regexp_replace({s}, '^.*e[+]?', '') AS INTEGER) ELSE 0 END");
        let int_part = format!("regexp_replace({mantissa}, '[.].*$', '')");
        let frac_part = format!("regexp_replace({mantissa}, '^[^.]*[.]?', '')");
        let all = format!("({int_part} || {frac_part})");
        let no_lead = format!("regexp_replace({all}, '^0+', '')");
        let digits = format!("regexp_replace({no_lead}, '0+$', '')");
        // (lpad and rpad take an INTEGER width in DuckDB and Spark; lengths are BIGINT.)
        // The decimal point's position within `digits`: after the integer part, moved by the
        // exponent, less the leading zeros dropped.
        let point = format!("(length({int_part}) + {exponent} - (length({all}) - length({no_lead})))");
        let positional = format!(
            "CASE WHEN {digits} = '' THEN '0' \
             WHEN {point} <= 0 THEN '0.' || lpad({digits}, CAST(length({digits}) - {point} AS INTEGER), '0') \
             WHEN {point} >= length({digits}) THEN rpad({digits}, CAST({point} AS INTEGER), '0') \
             ELSE substr({digits}, 1, {point}) || '.' || substr({digits}, {point} + 1) END"
        );
        format!(
            "CASE WHEN {s} LIKE '%nan%' THEN 'NaN' WHEN {s} LIKE '%inf%' THEN {sign} || 'inf' ELSE {sign} || {positional} END"
        )
    }

    fn byte_length(self, e: &str) -> String {
        match self.0 {
            Engine::DuckDb => format!("strlen({e})"),
            Engine::Trino => format!("length(to_utf8({e}))"),
            Engine::Redshift | Engine::Spark => format!("octet_length({e})"),
        }
    }

    /// Lowercase hex of SHA-256 (SHA-512 for `redshift-post`, except DuckDB: see the header).
    fn digest(self, input: &str, mode: Compatibility) -> String {
        let wide = mode == Compatibility::RedshiftPost;
        match (self.0, wide) {
            (Engine::DuckDb, _) => format!("sha256({input})"),
            (Engine::Redshift | Engine::Spark, false) => format!("sha2({input}, 256)"),
            (Engine::Redshift | Engine::Spark, true) => format!("sha2({input}, 512)"),
            (Engine::Trino, false) => format!("lower(to_hex(sha256(to_utf8({input}))))"),
            (Engine::Trino, true) => format!("lower(to_hex(sha512(to_utf8({input}))))"),
        }
    }

    /// The change hash of `values` (expression, type) in order.
    pub fn change_hash(self, values: &[(String, SqlType)], mode: Compatibility) -> String {
        let texts: Vec<(String, String)> = values.iter().map(|(e, t)| (e.clone(), self.typed_text(e, *t))).collect();
        self.change_hash_of_texts(&texts, mode)
    }

    /// The change hash of `values` given as (expression, its text form), in order.
    pub fn change_hash_of_texts(self, values: &[(String, String)], mode: Compatibility) -> String {
        let parts: Vec<String> = values
            .iter()
            .map(|(e, text)| match mode {
                Compatibility::Default => format!(
                    "CASE WHEN {e} IS NULL THEN 'N' ELSE 'V' || {} || ':' || {text} END",
                    self.cast_text(&self.byte_length(text))
                ),
                Compatibility::RedshiftPost => format!("COALESCE({text}, '')"),
            })
            .collect();
        self.digest(&parts.join("\n      || "), mode)
    }

    /// A select-list expression that stops the statement with `message` (a string expression)
    /// when `condition` holds. Redshift has no such function: there, a division by zero.
    pub fn fail_when(self, condition: &str, message: &str) -> String {
        match self.0 {
            Engine::DuckDb => format!("CASE WHEN {condition} THEN error({message}) END"),
            Engine::Spark => format!("CASE WHEN {condition} THEN raise_error({message}) END"),
            // Trino's fail(varchar) is a built-in left out of its function list, yet callable.
            Engine::Trino => format!("CASE WHEN {condition} THEN fail({message}) END"),
            // The divisor depends on the data, so the planner cannot fold it into an error.
            Engine::Redshift => format!("1 / CASE WHEN {condition} THEN 0 ELSE 1 END"),
        }
    }

    /// `CREATE` statements of a helper relation holding `query`: a view where the engine has
    /// session-scoped ones, a temp table when `materialize` (its rows must not move while the
    /// dimension changes) or on Redshift (no temporary views).
    pub fn relation(self, name: &str, query: &str, materialize: bool) -> String {
        match (self.0, materialize) {
            (Engine::DuckDb, false) => format!("CREATE OR REPLACE TEMP VIEW {name} AS\n{query};\n"),
            (Engine::DuckDb, true) => format!("CREATE OR REPLACE TEMP TABLE {name} AS\n{query};\n"),
            (Engine::Spark, _) => format!("CREATE OR REPLACE TEMPORARY VIEW {name} AS\n{query};\n"),
            (Engine::Trino, _) => format!("CREATE OR REPLACE VIEW {name} AS\n{query};\n"),
            (Engine::Redshift, _) => format!("DROP TABLE IF EXISTS {name};\nCREATE TEMP TABLE {name} AS\n{query};\n"),
        }
    }
}
