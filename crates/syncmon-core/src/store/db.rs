//! The store's connection, to SQLite or to PostgreSQL: one API over both, so that every query is
//! written once. Queries use SQLite's numbered placeholders (`?1`) and the SQL both databases
//! speak (`ON CONFLICT … DO NOTHING`, `RETURNING`, `CASE` rather than two-argument `max`); for
//! PostgreSQL the placeholders become `$1`, `LIKE` becomes `ILIKE` (SQLite's `LIKE` ignores
//! ASCII case) and `instr(text, part)` becomes `strpos(text, part)` (the same arguments). What still differs (schema, temporary tables, catalog lookups) asks
//! [`Db::dialect`].
//!
//! Parameters are rusqlite's (`params![…]`) and rows are read with rusqlite's `FromSql`: a
//! PostgreSQL value is first read as the SQLite value it would be (integer, real, text, blob),
//! and a parameter is bound as the type PostgreSQL expects for it, as loosely as SQLite would.
//!
//! The PostgreSQL client (`postgres`, blocking) runs its own small runtime: it must never be
//! called on a tokio worker thread; `Store` moves such calls to a scoped thread (`mod.rs`).

use postgres::types::{to_sql_checked, FromSql as PgFromSql, IsNull, ToSql as PgToSql, Type};
use rusqlite::types::{FromSql, ToSqlOutput, Value, ValueRef};
use rusqlite::ToSql;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

pub type DbResult<T> = std::result::Result<T, DbError>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", pg_message(.0))]
    Postgres(#[from] postgres::Error),
}

/// PostgreSQL's own words ("duplicate key value violates …") rather than "db error".
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("PostgreSQL: {}{}", db.message(), db.detail().map(|d| format!(" ({d})")).unwrap_or_default()),
        None => format!("PostgreSQL: {e}"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

pub struct PgConn {
    /// Always Some but in `drop`, which closes it where blocking is allowed.
    client: Option<postgres::Client>,
    /// Prepared statements by their SQL as written (before translation).
    statements: HashMap<String, postgres::Statement>,
    /// What to connect again with after the server closed the connection (a restart).
    config: postgres::Config,
    tls: PgTls,
    /// Inside BEGIN … COMMIT: a lost connection is then an error of the transaction, never a
    /// silent new connection running the rest outside it.
    in_transaction: bool,
}

/// How a PostgreSQL connection is protected; `pg_connect` chooses it from `[replica]`.
#[derive(Clone)]
pub enum PgTls {
    /// No TLS: only for a server on this machine (loopback).
    Plain,
    /// TLS with the server's certificate and host name verified against these roots; a server
    /// without TLS is refused (`sslmode` is `require` in `config`).
    Verified(std::sync::Arc<rustls::ClientConfig>),
}

impl PgConn {
    pub fn connect(config: &postgres::Config, tls: &PgTls) -> DbResult<PgConn> {
        let client = Self::open(config, tls)?;
        Ok(PgConn { client: Some(client), statements: HashMap::new(), config: config.clone(), tls: tls.clone(), in_transaction: false })
    }

    fn open(config: &postgres::Config, tls: &PgTls) -> DbResult<postgres::Client> {
        Ok(off_runtime(|| match tls {
            PgTls::Plain => config.connect(postgres::NoTls),
            PgTls::Verified(roots) => config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(roots.as_ref().clone())),
        })?)
    }

    /// After the server closed the connection (restarted, or the network dropped it) and outside
    /// a transaction: a new one, so that the agent carries on once the server is back.
    fn reconnect_if_closed(&mut self) -> DbResult<()> {
        if self.in_transaction || !self.client.as_ref().is_some_and(|c| c.is_closed()) {
            return Ok(());
        }
        let client = Self::open(&self.config, &self.tls)?;
        if let Some(old) = self.client.replace(client) {
            off_runtime(move || drop(old));
        }
        self.statements.clear();
        tracing::info!("reconnected to the PostgreSQL replica");
        Ok(())
    }

    fn client(&mut self) -> &mut postgres::Client {
        self.client.as_mut().expect("open until dropped")
    }

    fn statement(&mut self, sql: &str) -> DbResult<postgres::Statement> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client().prepare(&to_postgres(sql))?;
        self.statements.insert(sql.to_string(), st.clone());
        Ok(st)
    }
}

impl Drop for PgConn {
    /// Closing the connection blocks on the client's runtime: not on a tokio worker.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            off_runtime(move || drop(client));
        }
    }
}

pub enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(Box<RefCell<PgConn>>),
}

/// The values of `params`, as SQLite would store them.
fn values(params: &[&dyn ToSql]) -> DbResult<Vec<PgParam>> {
    params
        .iter()
        .map(|p| {
            Ok(PgParam(match p.to_sql()? {
                ToSqlOutput::Borrowed(v) => v.into(),
                ToSqlOutput::Owned(v) => v,
                _ => return Err(rusqlite::Error::ToSqlConversionFailure("unsupported parameter kind".into()).into()),
            }))
        })
        .collect()
}

/// Runs `f` where the blocking client may block: on this thread, or on a scoped thread when this
/// one belongs to a tokio runtime (the client's own `block_on` would panic there).
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| s.spawn(f).join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
}

/// Runs `run` with the prepared statement of `sql` and the parameters bound, off the runtime.
fn pg_call<T: Send>(
    conn: &RefCell<PgConn>,
    sql: &str,
    params: &[&dyn ToSql],
    run: impl FnOnce(&mut postgres::Client, &postgres::Statement, &[&(dyn PgToSql + Sync)]) -> Result<T, postgres::Error> + Send,
) -> DbResult<(postgres::Statement, T)> {
    let values = values(params)?;
    let refs: Vec<&(dyn PgToSql + Sync)> = values.iter().map(|v| v as &(dyn PgToSql + Sync)).collect();
    let mut c = conn.borrow_mut();
    let c = &mut *c;
    c.reconnect_if_closed()?;
    let st = off_runtime(|| c.statement(sql))?;
    let client = c.client();
    let out = off_runtime(|| run(client, &st, &refs))?;
    Ok((st, out))
}

fn pg_query(conn: &RefCell<PgConn>, sql: &str, params: &[&dyn ToSql]) -> DbResult<(Vec<String>, Vec<Vec<Value>>)> {
    let (st, rows) = pg_call(conn, sql, params, |client, st, refs| client.query(st, refs))?;
    let names = st.columns().iter().map(|c| c.name().to_string()).collect();
    let rows = rows.iter().map(|r| (0..r.len()).map(|i| pg_value(r, i)).collect::<DbResult<Vec<_>>>()).collect::<DbResult<_>>()?;
    Ok((names, rows))
}

fn pg_execute(conn: &RefCell<PgConn>, sql: &str, params: &[&dyn ToSql]) -> DbResult<usize> {
    Ok(pg_call(conn, sql, params, |client, st, refs| client.execute(st, refs))?.1 as usize)
}

impl Db {
    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite connection (schema checks, pragmas); None on PostgreSQL.
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Db::Sqlite(c) => Some(c),
            Db::Postgres(_) => None,
        }
    }

    pub fn execute(&self, sql: &str, params: &[&dyn ToSql]) -> DbResult<usize> {
        match self {
            Db::Sqlite(c) => Ok(c.prepare_cached(sql)?.execute(params)?),
            Db::Postgres(c) => pg_execute(c, sql, params),
        }
    }

    /// PostgreSQL only: `rows` into `table`'s `columns` with one binary COPY (of the given
    /// types), the fastest bulk insert it has; inside the open transaction. Returns the rows written.
    pub fn copy_in(&self, table: &str, columns: &[&str], types: &[Type], rows: &[Vec<Value>]) -> DbResult<usize> {
        let Db::Postgres(c) = self else {
            return Err(rusqlite::Error::InvalidQuery.into());
        };
        let sql = format!("COPY \"{table}\" ({}) FROM STDIN (FORMAT binary)", columns.join(", "));
        let mut conn = c.borrow_mut();
        let client = conn.client();
        off_runtime(|| -> Result<usize, postgres::Error> {
            let mut writer = postgres::binary_copy::BinaryCopyInWriter::new(client.copy_in(&sql)?, types);
            for row in rows {
                let values: Vec<PgParam> = row.iter().cloned().map(PgParam).collect();
                let refs: Vec<&(dyn PgToSql + Sync)> = values.iter().map(|v| v as &(dyn PgToSql + Sync)).collect();
                writer.write(&refs)?;
            }
            Ok(writer.finish()? as usize)
        })
        .map_err(Into::into)
    }

    /// Several statements, no parameters (migrations, DDL).
    pub fn execute_batch(&self, sql: &str) -> DbResult<()> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Db::Postgres(c) => {
                let mut conn = c.borrow_mut();
                conn.reconnect_if_closed()?;
                let client = conn.client();
                let done = off_runtime(|| client.batch_execute(sql));
                // Transactions begin and end here (`transaction`, `commit`, a dropped `Tx`).
                match sql {
                    "BEGIN" => conn.in_transaction = done.is_ok(),
                    "COMMIT" | "ROLLBACK" => conn.in_transaction = false,
                    _ => {}
                }
                Ok(done?)
            }
        }
    }

    /// Every row, each read by `f`.
    pub fn query_all<T>(&self, sql: &str, params: &[&dyn ToSql], mut f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>) -> DbResult<Vec<T>> {
        match self {
            Db::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(params)?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Sqlite(r))?);
                }
                Ok(out)
            }
            Db::Postgres(c) => {
                let (names, rows) = pg_query(c, sql, params)?;
                rows.into_iter().map(|values| Ok(f(&Row::Values { names: &names, values })?)).collect()
            }
        }
    }

    /// The first row read by `f`, None when there is none.
    pub fn query_opt<T>(&self, sql: &str, params: &[&dyn ToSql], f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>) -> DbResult<Option<T>> {
        match self {
            Db::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(params)?;
                Ok(match rows.next()? {
                    Some(r) => Some(f(&Row::Sqlite(r))?),
                    None => None,
                })
            }
            Db::Postgres(c) => {
                let (names, rows) = pg_query(c, sql, params)?;
                Ok(match rows.into_iter().next() {
                    Some(values) => Some(f(&Row::Values { names: &names, values })?),
                    None => None,
                })
            }
        }
    }

    /// The first row read by `f`; no row is an error (rusqlite's `QueryReturnedNoRows`).
    pub fn query_row<T>(&self, sql: &str, params: &[&dyn ToSql], f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>) -> DbResult<T> {
        self.query_opt(sql, params, f)?.ok_or(DbError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
    }

    /// A statement to run many times (a page's rows): prepared once.
    pub fn prepare(&self, sql: &str) -> DbResult<Stmt<'_>> {
        match self {
            Db::Sqlite(c) => Ok(Stmt::Sqlite(RefCell::new(c.prepare_cached(sql)?))),
            Db::Postgres(c) => {
                let mut conn = c.borrow_mut();
                let conn = &mut *conn;
                conn.reconnect_if_closed()?;
                off_runtime(|| conn.statement(sql))?;
                Ok(Stmt::Postgres { conn: c, sql: sql.to_string() })
            }
        }
    }

    /// BEGIN (DEFERRED on SQLite); rolled back when dropped without [`Tx::commit`].
    pub fn transaction(&self) -> DbResult<Tx<'_>> {
        self.execute_batch("BEGIN")?;
        Ok(Tx { db: self, open: Cell::new(true) })
    }

    /// BEGIN IMMEDIATE on SQLite (the write lock at once: schema migrations), BEGIN on PostgreSQL.
    pub fn transaction_immediate(&self) -> DbResult<Tx<'_>> {
        self.execute_batch(if self.dialect() == Dialect::Sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" })?;
        Ok(Tx { db: self, open: Cell::new(true) })
    }
}

/// An open transaction; derefs to the [`Db`] its statements run on.
pub struct Tx<'a> {
    db: &'a Db,
    open: Cell<bool>,
}

impl Tx<'_> {
    pub fn commit(self) -> DbResult<()> {
        self.open.set(false);
        self.db.execute_batch("COMMIT")
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open.get() {
            let _ = self.db.execute_batch("ROLLBACK");
        }
    }
}

pub enum Stmt<'a> {
    Sqlite(RefCell<rusqlite::CachedStatement<'a>>),
    Postgres { conn: &'a RefCell<PgConn>, sql: String },
}

impl Stmt<'_> {
    pub fn execute(&self, params: &[&dyn ToSql]) -> DbResult<usize> {
        match self {
            Stmt::Sqlite(st) => Ok(st.borrow_mut().execute(params)?),
            Stmt::Postgres { conn, sql } => pg_execute(conn, sql, params),
        }
    }

    pub fn query_opt<T>(&self, params: &[&dyn ToSql], f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>) -> DbResult<Option<T>> {
        match self {
            Stmt::Sqlite(st) => {
                let mut st = st.borrow_mut();
                let mut rows = st.query(params)?;
                Ok(match rows.next()? {
                    Some(r) => Some(f(&Row::Sqlite(r))?),
                    None => None,
                })
            }
            Stmt::Postgres { conn, sql } => {
                let (names, rows) = pg_query(conn, sql, params)?;
                Ok(match rows.into_iter().next() {
                    Some(values) => Some(f(&Row::Values { names: &names, values })?),
                    None => None,
                })
            }
        }
    }
}

/// A row of either database, read with rusqlite's `FromSql` by position or column name.
pub enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Values { names: &'a [String], values: Vec<Value> },
}

/// A column by position (`0`) or by name (`"checkpoint"`).
pub trait ColumnIndex: rusqlite::RowIndex + Copy {
    fn position(self, names: &[String]) -> Option<usize>;
}

impl ColumnIndex for usize {
    fn position(self, names: &[String]) -> Option<usize> {
        (self < names.len()).then_some(self)
    }
}

impl ColumnIndex for &str {
    fn position(self, names: &[String]) -> Option<usize> {
        names.iter().position(|n| n.eq_ignore_ascii_case(self))
    }
}

impl Row<'_> {
    pub fn get<I: ColumnIndex, T: FromSql>(&self, idx: I) -> rusqlite::Result<T> {
        match self {
            Row::Sqlite(r) => r.get(idx),
            Row::Values { names, values } => {
                let i = idx.position(names).ok_or(rusqlite::Error::InvalidColumnIndex(usize::MAX))?;
                let v = ValueRef::from(&values[i]);
                T::column_result(v).map_err(|e| match e {
                    rusqlite::types::FromSqlError::InvalidType => rusqlite::Error::InvalidColumnType(i, names[i].clone(), v.data_type()),
                    other => rusqlite::Error::FromSqlConversionFailure(i, v.data_type(), Box::new(other)),
                })
            }
        }
    }
}

/// `?1` → `$1` (a bare `?` takes the next number), `LIKE` → `ILIKE`; string literals and quoted
/// names are left as they are.
pub fn to_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut next = 0u32;
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.eq_ignore_ascii_case("LIKE") {
            out.push_str("ILIKE");
        } else if word.eq_ignore_ascii_case("instr") {
            out.push_str("strpos");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    while let Some(c) = chars.next() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        flush(&mut word, &mut out);
        match c {
            '\'' | '"' => {
                out.push(c);
                for q in chars.by_ref() {
                    out.push(q);
                    if q == c {
                        break; // a doubled quote reopens at the next character: still correct
                    }
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = if digits.is_empty() {
                    next += 1;
                    next
                } else {
                    digits.parse().unwrap_or(0)
                };
                next = next.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    flush(&mut word, &mut out);
    out
}

/// A parameter bound as the type PostgreSQL inferred for it, converted as SQLite's affinity
/// would (an integer into a text column is its digits, 1/0 into a boolean).
#[derive(Debug)]
struct PgParam(Value);

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl PgToSql for PgParam {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> std::result::Result<IsNull, BoxError> {
        let is = |t: &Type| ty == t;
        fn put<T: PgToSql>(v: T, ty: &Type, out: &mut bytes::BytesMut) -> std::result::Result<IsNull, BoxError> {
            v.to_sql(ty, out)
        }
        match &self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(i) if is(&Type::INT8) => put(i, ty, out),
            Value::Integer(i) if is(&Type::INT4) => put(i32::try_from(*i)?, ty, out),
            Value::Integer(i) if is(&Type::INT2) => put(i16::try_from(*i)?, ty, out),
            Value::Integer(i) if is(&Type::BOOL) => put(*i != 0, ty, out),
            Value::Integer(i) if is(&Type::FLOAT8) => put(*i as f64, ty, out),
            Value::Integer(i) if is(&Type::FLOAT4) => put(*i as f32, ty, out),
            Value::Integer(i) => put(i.to_string(), &Type::TEXT, out),
            Value::Real(f) if is(&Type::FLOAT8) => put(f, ty, out),
            Value::Real(f) if is(&Type::FLOAT4) => put(*f as f32, ty, out),
            Value::Real(f) => put(f.to_string(), &Type::TEXT, out),
            Value::Text(s) if is(&Type::INT8) => put(s.parse::<i64>()?, ty, out),
            Value::Text(s) if is(&Type::INT4) => put(s.parse::<i32>()?, ty, out),
            Value::Text(s) if is(&Type::BYTEA) => put(s.as_bytes(), ty, out),
            Value::Text(s) => put(s.as_str(), &Type::TEXT, out),
            Value::Blob(b) => put(b.as_slice(), &Type::BYTEA, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A PostgreSQL value as the SQLite value it would be.
fn pg_value(row: &postgres::Row, i: usize) -> DbResult<Value> {
    let ty = row.columns()[i].type_().clone();
    let v = match ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Value::Integer),
        Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map(|v| Value::Integer(v.into())),
        Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map(|v| Value::Integer(v.into())),
        Type::BOOL => row.try_get::<_, Option<bool>>(i)?.map(|v| Value::Integer(v.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.map(Value::Real),
        Type::FLOAT4 => row.try_get::<_, Option<f32>>(i)?.map(|v| Value::Real(v.into())),
        Type::NUMERIC => row.try_get::<_, Option<Numeric>>(i)?.map(|n| n.0),
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob),
        _ => row.try_get::<_, Option<String>>(i)?.map(Value::Text),
    };
    Ok(v.unwrap_or(Value::Null))
}

/// `sum()` and `avg()` of integers are NUMERIC in PostgreSQL: an integer when it has no
/// fraction digits, else a real (binary format: digit count, weight, sign, scale, base-10000 digits).
struct Numeric(Value);

impl<'a> PgFromSql<'a> for Numeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> std::result::Result<Self, BoxError> {
        let word = |k: usize| -> std::result::Result<i16, BoxError> { Ok(i16::from_be_bytes(raw.get(k..k + 2).ok_or("short NUMERIC")?.try_into()?)) };
        let (ndigits, weight, sign, scale) = (word(0)? as usize, word(2)? as i32, word(4)? as u16, word(6)?);
        if sign == 0xC000 {
            return Ok(Numeric(Value::Real(f64::NAN)));
        }
        let mut value = 0f64;
        for k in 0..ndigits {
            value += f64::from(word(8 + 2 * k)?) * 10000f64.powi(weight - k as i32);
        }
        if sign == 0x4000 {
            value = -value;
        }
        Ok(Numeric(if scale == 0 && value.abs() < 9.0e15 { Value::Integer(value as i64) } else { Value::Real(value) }))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_like_are_translated_outside_literals() {
        assert_eq!(to_postgres("SELECT a FROM t WHERE b = ?2 AND c = ?1"), "SELECT a FROM t WHERE b = $2 AND c = $1");
        assert_eq!(to_postgres("INSERT INTO t VALUES (?, ?)"), "INSERT INTO t VALUES ($1, $2)");
        assert_eq!(to_postgres("SELECT '?1', \"a?\" FROM t WHERE m LIKE ?1 ESCAPE '\\'"), "SELECT '?1', \"a?\" FROM t WHERE m ILIKE $1 ESCAPE '\\'");
        assert_eq!(to_postgres("SELECT unlike, likely FROM t"), "SELECT unlike, likely FROM t");
        assert_eq!(to_postgres("WHERE instr(lower(body), ?1) > 0"), "WHERE strpos(lower(body), $1) > 0");
        assert_eq!(to_postgres("SELECT 'it''s ?' , ?3"), "SELECT 'it''s ?' , $3");
    }

    fn both() -> (syncmon_testpg::PgCluster, Vec<Db>) {
        let pg = syncmon_testpg::PgCluster::start();
        let config: postgres::Config = pg.url("postgres").parse().unwrap();
        let dbs = vec![
            Db::Sqlite(rusqlite::Connection::open_in_memory().unwrap()),
            Db::Postgres(Box::new(RefCell::new(PgConn::connect(&config, &PgTls::Plain).unwrap()))),
        ];
        (pg, dbs)
    }

    /// The same SQL and the same rusqlite reads give the same answers on both databases.
    #[test]
    fn one_query_reads_alike_on_sqlite_and_postgresql() {
        let (_pg, dbs) = both();
        for db in &dbs {
            let d = db.dialect();
            // SQLite takes PostgreSQL's type names (by affinity).
            db.execute_batch("CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT NOT NULL, n BIGINT, price DOUBLE PRECISION, raw BYTEA)").unwrap();
            let insert = db.prepare("INSERT INTO t (id, name, n, price, raw) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING").unwrap();
            for i in 1..=3i64 {
                assert_eq!(insert.execute(rusqlite::params![i, format!("Item {i}"), i * 10, 1.5, vec![i as u8]]).unwrap(), 1, "{d:?}");
            }
            assert_eq!(insert.execute(rusqlite::params![1, "again", 0, 0.0, Vec::<u8>::new()]).unwrap(), 0, "{d:?}: a conflict inserts nothing");
            drop(insert);
            // An integer passed for a text comparison, a boolean read from an expression, a NUMERIC sum.
            let (count, sum, any): (i64, i64, bool) = db
                .query_row("SELECT count(*), sum(n), count(*) > 0 FROM t WHERE name LIKE ?1", rusqlite::params!["item%"], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .unwrap();
            assert_eq!((count, sum, any), (3, 60, true), "{d:?}: LIKE ignores case on both");
            let rows = db.query_all("SELECT id, name, price, raw FROM t WHERE id >= ?1 ORDER BY id", rusqlite::params![2], |r| {
                Ok((r.get::<_, i64>("id")?, r.get::<_, String>("name")?, r.get::<_, f64>("price")?, r.get::<_, Vec<u8>>("raw")?))
            });
            assert_eq!(rows.unwrap(), vec![(2, "Item 2".to_string(), 1.5, vec![2]), (3, "Item 3".to_string(), 1.5, vec![3])], "{d:?}");
            assert_eq!(db.query_opt("SELECT name FROM t WHERE id = ?1", rusqlite::params![9], |r| r.get::<_, String>(0)).unwrap(), None);
            let id: i64 = db.query_row("INSERT INTO t (id, name) VALUES (?1, ?2) RETURNING id", rusqlite::params![7, "seven"], |r| r.get(0)).unwrap();
            assert_eq!(id, 7, "{d:?}: RETURNING");
            // A transaction dropped without commit leaves nothing; a committed one stays.
            {
                let tx = db.transaction().unwrap();
                tx.execute("DELETE FROM t", &[]).unwrap();
            }
            assert_eq!(db.query_row("SELECT count(*) FROM t", &[], |r| r.get::<_, i64>(0)).unwrap(), 4, "{d:?}: rolled back");
            let tx = db.transaction().unwrap();
            tx.execute("DELETE FROM t WHERE id = ?1", rusqlite::params![7]).unwrap();
            tx.commit().unwrap();
            assert_eq!(db.query_row("SELECT count(*) FROM t", &[], |r| r.get::<_, i64>(0)).unwrap(), 3, "{d:?}: committed");
        }
    }

    /// The blocking client inside the agent's runtime (a worker thread, and a current-thread
    /// runtime) neither panics nor deadlocks; dropping it there is fine too.
    #[test]
    fn postgresql_calls_work_from_inside_a_tokio_runtime() {
        let (_pg, mut dbs) = both();
        let db = dbs.pop().unwrap();
        let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let db = multi.block_on(async move {
            assert_eq!(db.query_row("SELECT 40 + ?1", rusqlite::params![2], |r| r.get::<_, i64>(0)).unwrap(), 42);
            db
        });
        let current = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        current.block_on(async move {
            db.execute_batch("CREATE TABLE t (n BIGINT)").unwrap();
            let tx = db.transaction().unwrap();
            tx.execute("INSERT INTO t VALUES (?1)", rusqlite::params![1]).unwrap();
            tx.commit().unwrap();
            assert_eq!(db.query_row("SELECT count(*) FROM t", &[], |r| r.get::<_, i64>(0)).unwrap(), 1);
            drop(db);
        });
    }

    /// The server restarts under a running agent: a call outside a transaction may fail once,
    /// then the connection is made again; inside a transaction the loss is an error of that
    /// transaction (nothing of it runs on the new connection), and the next one works.
    #[test]
    fn a_restarted_server_is_reconnected_to_but_never_in_the_middle_of_a_transaction() {
        let (pg, mut dbs) = both();
        let db = dbs.pop().unwrap();
        db.execute_batch("CREATE TABLE t (n BIGINT)").unwrap();
        let count = || db.query_row("SELECT count(*) FROM t", &[], |r| r.get::<_, i64>(0));
        assert_eq!(count().unwrap(), 0);
        pg.restart();
        let answered = (0..3).find_map(|_| count().ok());
        assert_eq!(answered, Some(0), "answers again after at most a failed call or two");

        let tx = db.transaction().unwrap();
        tx.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
        pg.restart();
        let insert = tx.execute("INSERT INTO t VALUES (2)", &[]);
        // As the store does: an error ends the transaction (the `Tx` is dropped, rolling back).
        let commit = match insert {
            Ok(_) => tx.commit(),
            Err(e) => {
                drop(tx);
                Err(e)
            }
        };
        assert!(commit.is_err(), "the transaction's connection is gone: it fails as a whole");
        let after = (0..3).find_map(|_| count().ok());
        assert_eq!(after, Some(0), "neither row was written outside the transaction");
    }

    #[test]
    fn postgresql_errors_say_what_postgresql_said() {
        let (_pg, dbs) = both();
        let err = dbs[1].execute("INSERT INTO nowhere VALUES (?1)", rusqlite::params![1]).unwrap_err().to_string();
        assert!(err.starts_with("PostgreSQL: relation \"nowhere\" does not exist"), "{err}");
    }
}
