//! Pooled connections that prepare each statement once.
//!
//! The `postgres` client runs SQL text by preparing it first: every call is
//! two round trips (Parse/Describe, then Bind/Execute), and the statement is
//! closed again when dropped. A [`Conn`] keeps what it prepared, by SQL
//! text, for as long as the connection lives, so a statement costs one round
//! trip from its second run on. [`Queries`] is the one way to run SQL on a
//! [`Conn`] or on a transaction of it ([`Tx`]), which shares the cache.
//!
//! A statement prepared inside a transaction stays prepared when the
//! transaction rolls back: protocol-level statements are not transactional
//! (only SQL `PREPARE` is), and PostgreSQL re-plans a statement whose tables
//! changed. A cached statement the server has lost anyway (`DEALLOCATE`, or
//! "cached plan must not change result type" after a column changed type)
//! fails once and is forgotten, so the next run prepares it again.

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, Error, GenericClient, IsolationLevel, NoTls, Row, Statement};
use r2d2_postgres::PostgresConnectionManager;
use std::collections::HashMap;

/// Query parameters, as the `postgres` client takes them.
pub(crate) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// More distinct SQL texts than the store has: a cache this full is cleared
/// rather than grown (a statement built with values inlined would otherwise
/// grow it without end).
const MAX_STATEMENTS: usize = 256;

/// The statements a connection prepared, by SQL text.
#[derive(Default)]
pub(crate) struct Statements(HashMap<String, Statement>);

impl Statements {
    /// The statement for `sql`, prepared on `client` the first time.
    fn get(&mut self, client: &mut impl GenericClient, sql: &str) -> Result<Statement, Error> {
        if let Some(statement) = self.0.get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(sql)?;
        if self.0.len() >= MAX_STATEMENTS {
            self.0.clear();
        }
        self.0.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// `result` of running `sql`'s cached statement, after forgetting the
    /// statement if the server cannot run it any more.
    fn check<T>(&mut self, sql: &str, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(error) = &result {
            if error.code().is_some_and(|code| {
                *code == SqlState::INVALID_SQL_STATEMENT_NAME
                    || *code == SqlState::FEATURE_NOT_SUPPORTED
            }) {
                self.0.remove(sql);
            }
        }
        result
    }
}

/// A pooled connection: the client and the statements prepared on it.
pub(crate) struct Conn {
    client: Client,
    statements: Statements,
}

impl Conn {
    fn new(client: Client) -> Self {
        Self {
            client,
            statements: Statements::default(),
        }
    }

    /// Starts a transaction (`BEGIN`); it rolls back unless committed.
    pub(crate) fn transaction(&mut self) -> Result<Tx<'_>, Error> {
        Ok(Tx {
            tx: self.client.transaction()?,
            statements: &mut self.statements,
        })
    }

    /// A transaction with settings (isolation level, read-only).
    pub(crate) fn build_transaction(&mut self) -> TxBuilder<'_> {
        TxBuilder {
            builder: self.client.build_transaction(),
            statements: &mut self.statements,
        }
    }

    /// Runs SQL text with the simple protocol (nothing prepared).
    pub(crate) fn simple_query(
        &mut self,
        sql: &str,
    ) -> Result<Vec<postgres::SimpleQueryMessage>, Error> {
        self.client.simple_query(sql)
    }
}

/// A transaction on a [`Conn`], preparing through the connection's cache.
pub(crate) struct Tx<'a> {
    tx: postgres::Transaction<'a>,
    statements: &'a mut Statements,
}

impl Tx<'_> {
    pub(crate) fn commit(self) -> Result<(), Error> {
        self.tx.commit()
    }

    /// Runs SQL statements with the simple protocol (nothing prepared).
    pub(crate) fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        self.tx.batch_execute(sql)
    }
}

/// [`Conn::build_transaction`]'s settings.
pub(crate) struct TxBuilder<'a> {
    builder: postgres::TransactionBuilder<'a>,
    statements: &'a mut Statements,
}

impl<'a> TxBuilder<'a> {
    pub(crate) fn isolation_level(self, level: IsolationLevel) -> Self {
        Self {
            builder: self.builder.isolation_level(level),
            ..self
        }
    }

    pub(crate) fn read_only(self, read_only: bool) -> Self {
        Self {
            builder: self.builder.read_only(read_only),
            ..self
        }
    }

    pub(crate) fn start(self) -> Result<Tx<'a>, Error> {
        Ok(Tx {
            tx: self.builder.start()?,
            statements: self.statements,
        })
    }
}

/// Running SQL on a [`Conn`] or a [`Tx`], each statement prepared once per
/// connection. `sql` is a fixed text (values go in parameters): it is the
/// cache key.
pub(crate) trait Queries {
    /// The client statements run on.
    type Client: GenericClient;

    /// The client to run statements on and the connection's statements.
    fn parts(&mut self) -> (&mut Self::Client, &mut Statements);

    /// The statement for `sql`, prepared on this connection the first time.
    fn prepared(&mut self, sql: &str) -> Result<Statement, Error> {
        let (client, statements) = self.parts();
        statements.get(client, sql)
    }

    /// Runs `sql`; the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &Params<'_>) -> Result<u64, Error> {
        let statement = self.prepared(sql)?;
        let (client, statements) = self.parts();
        let result = client.execute(&statement, params);
        statements.check(sql, result)
    }

    /// Runs `sql`; the rows it returned.
    fn query(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, Error> {
        let statement = self.prepared(sql)?;
        let (client, statements) = self.parts();
        let result = client.query(&statement, params);
        statements.check(sql, result)
    }

    /// Runs `sql`, which returns at most one row.
    fn query_opt(&mut self, sql: &str, params: &Params<'_>) -> Result<Option<Row>, Error> {
        let statement = self.prepared(sql)?;
        let (client, statements) = self.parts();
        let result = client.query_opt(&statement, params);
        statements.check(sql, result)
    }

    /// Runs `sql`, which returns exactly one row.
    fn query_one(&mut self, sql: &str, params: &Params<'_>) -> Result<Row, Error> {
        let statement = self.prepared(sql)?;
        let (client, statements) = self.parts();
        let result = client.query_one(&statement, params);
        statements.check(sql, result)
    }
}

impl Queries for Conn {
    type Client = Client;

    fn parts(&mut self) -> (&mut Client, &mut Statements) {
        (&mut self.client, &mut self.statements)
    }
}

impl<'a> Queries for Tx<'a> {
    type Client = postgres::Transaction<'a>;

    fn parts(&mut self) -> (&mut postgres::Transaction<'a>, &mut Statements) {
        (&mut self.tx, self.statements)
    }
}

/// The pool's connection manager: `r2d2_postgres`'s, with each connection
/// wrapped in a [`Conn`].
#[derive(Debug)]
pub(crate) struct Manager(PostgresConnectionManager<NoTls>);

impl Manager {
    pub(crate) fn new(config: postgres::Config) -> Self {
        Self(PostgresConnectionManager::new(config, NoTls))
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = Error;

    fn connect(&self) -> Result<Conn, Error> {
        self.0.connect().map(Conn::new)
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use r2d2::ManageConnection;

    fn conn() -> Conn {
        let config: postgres::Config = super::super::testing::base_url()
            .parse()
            .expect("the test server's URL");
        Manager::new(config)
            .connect()
            .expect("connect to the test server")
    }

    /// How many statements with text `sql` the server holds for `conn`.
    fn on_server(conn: &mut Conn, sql: &str) -> i64 {
        conn.client
            .query_one(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1",
                &[&sql],
            )
            .expect("list prepared statements")
            .get(0)
    }

    const ADD: &str = "SELECT $1::int4 + 1";

    #[test]
    fn a_statement_prepared_in_a_transaction_that_rolls_back_is_reused() {
        let mut conn = conn();
        {
            let mut tx = conn.transaction().expect("begin");
            let two: i32 = tx.query_one(ADD, &[&1i32]).expect("run").get(0);
            assert_eq!(two, 2);
            // Dropped: rolled back.
        }
        {
            let mut tx = conn.transaction().expect("begin");
            assert_eq!(
                tx.query_one(ADD, &[&2i32])
                    .expect("cached")
                    .get::<_, i32>(0),
                3
            );
            // A failed statement aborts the transaction; it rolls back.
            tx.execute("SELECT 1 / ($1::int4 - 1)", &[&1i32])
                .expect_err("division by zero");
            tx.query_one(ADD, &[&2i32])
                .expect_err("the transaction is aborted");
        }
        assert_eq!(
            conn.query_one(ADD, &[&3i32])
                .expect("reuse")
                .get::<_, i32>(0),
            4
        );
        assert_eq!(on_server(&mut conn, ADD), 1, "prepared once, still there");
        assert!(conn.statements.0.contains_key(ADD));
        assert_eq!(conn.statements.0.len(), 2, "ADD and the division");
    }

    #[test]
    fn a_statement_the_server_lost_is_prepared_again() {
        let mut conn = conn();
        conn.query_one(ADD, &[&1i32]).expect("run");
        conn.simple_query("DEALLOCATE ALL").expect("deallocate");
        let lost = conn
            .query_one(ADD, &[&1i32])
            .expect_err("the statement is gone");
        assert_eq!(lost.code(), Some(&SqlState::INVALID_SQL_STATEMENT_NAME));
        assert_eq!(
            conn.query_one(ADD, &[&1i32])
                .expect("prepared again")
                .get::<_, i32>(0),
            2
        );
        assert_eq!(on_server(&mut conn, ADD), 1);
    }

    #[test]
    fn a_full_cache_starts_over() {
        let mut conn = conn();
        for i in 0..=MAX_STATEMENTS {
            conn.query_one(&format!("SELECT {i}"), &[]).expect("run");
        }
        assert_eq!(conn.statements.0.len(), 1);
    }
}
