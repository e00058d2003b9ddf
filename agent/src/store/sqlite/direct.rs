//! The group commit's statements, run on the caller's thread.
//!
//! sqlx runs each SQLite connection on a thread of its own: every statement
//! is sent there and its result sent back, two thread hand-offs a statement.
//! A group of new entries is several statements per entry, so under load the
//! hand-offs, not SQLite, were most of the writer's cost (BENCHMARKS.md).
//! Here the writer connection's handle is borrowed from sqlx for the whole
//! group, and the statements run through rusqlite on the same handle: one
//! hand-off per group. Same connection, so the same pragmas (foreign keys,
//! busy timeout) and no second writer racing for SQLite's lock.

use rusqlite::{Connection, params};

use super::*;
use super::entries::Queued;

/// Why one write of a group was not done.
enum Refused {
    /// Before it wrote anything, by a check that undoes only its own
    /// statement (a claimed update key, an author not of the family, a
    /// unique key taken): the others stand.
    Cleanly(StoreError),
    /// After part of it was written, or by an error after which SQLite may
    /// have ended the transaction: the group is rolled back.
    Midway(StoreError),
}

fn map(e: rusqlite::Error) -> StoreError {
    use rusqlite::ffi::{SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE};
    match e {
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
        rusqlite::Error::SqliteFailure(f, message) if matches!(f.extended_code, SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY) => {
            StoreError::Conflict(message.unwrap_or_else(|| f.to_string()))
        }
        e => backend(e),
    }
}

/// Writes the group on the writer connection, one outcome per write in
/// order: one transaction for all, or if that cannot be (a write failed
/// midway, the commit failed), each write on its own, so one bad write never
/// costs another its place.
pub(super) async fn write_group(writer: &SqlitePool, group: &[Queued]) -> Vec<StoreResult<()>> {
    let failed = |e: StoreError| group.iter().map(|_| Err(StoreError::Unavailable(e.to_string().into()))).collect();
    let mut conn = match writer.acquire().await {
        Ok(conn) => conn,
        Err(e) => return failed(map_err(e)),
    };
    let mut handle = match conn.lock_handle().await {
        Ok(handle) => handle,
        Err(e) => return failed(map_err(e)),
    };
    // SAFETY: while `handle` lives, sqlx's thread for this connection makes
    // no call on it (the guarantee of `LockedSqliteHandle`), so this thread
    // is its only user; `db` is dropped before `handle`, and rusqlite
    // neither closes a handle it did not open nor keeps it past `db`. No
    // await happens while `db` exists.
    let outcomes = match unsafe { Connection::from_handle(handle.as_raw_handle().as_ptr()) } {
        Ok(db) => {
            let outcomes = match try_group(&db, group) {
                Ok(outcomes) => outcomes,
                Err(_) => group.iter().map(|q| write_alone(&db, q)).collect(),
            };
            drop(db);
            outcomes
        }
        Err(e) => failed(map(e)),
    };
    drop(handle);
    outcomes
}

/// Ends a transaction that a failure left open, so the connection goes back to sqlx as it came.
fn roll_back(db: &Connection) {
    if !db.is_autocommit() {
        let _ = db.execute_batch("ROLLBACK");
    }
}

fn try_group(db: &Connection, group: &[Queued]) -> StoreResult<Vec<StoreResult<()>>> {
    db.execute_batch("BEGIN IMMEDIATE").map_err(map)?;
    let mut outcomes = Vec::with_capacity(group.len());
    for q in group {
        match write_queued(db, q) {
            Ok(()) => outcomes.push(Ok(())),
            Err(Refused::Cleanly(e)) => outcomes.push(Err(e)),
            Err(Refused::Midway(e)) => {
                roll_back(db);
                return Err(e);
            }
        }
    }
    if let Err(e) = db.execute_batch("COMMIT") {
        roll_back(db);
        return Err(map(e));
    }
    Ok(outcomes)
}

fn write_alone(db: &Connection, q: &Queued) -> StoreResult<()> {
    db.execute_batch("BEGIN IMMEDIATE").map_err(map)?;
    let outcome = match write_queued(db, q) {
        Ok(()) => db.execute_batch("COMMIT").map_err(map),
        Err(Refused::Cleanly(e) | Refused::Midway(e)) => Err(e),
    };
    roll_back(db);
    outcome
}

/// One queued write inside the group's transaction.
fn write_queued(db: &Connection, q: &Queued) -> Result<(), Refused> {
    // A failed statement leaves nothing of itself behind when it breaks a
    // constraint or matches no row (SQLite undoes just that statement).
    let clean_unless = |wrote: bool| move |e: StoreError| match e {
        StoreError::NotFound | StoreError::Conflict(_) if !wrote => Refused::Cleanly(e),
        e => Refused::Midway(e),
    };
    match q {
        Queued::Entry { family_id, id, entry, jobs, now, .. } => {
            let family = family_id.to_string();
            let id_text = id.to_string();
            let mut wrote = false;
            if let Some(key) = &entry.dedupe_key {
                match db.prepare_cached(CLAIM_SQL).and_then(|mut s| s.execute(params![key, family, ms(Utc::now())])) {
                    Ok(1) => wrote = true,
                    Ok(_) => return Err(Refused::Cleanly(StoreError::AlreadyHandled)),
                    Err(e) => return Err(Refused::Midway(map(e))),
                }
            }
            let row = params![
                id_text,
                entry.author_id.to_string(),
                entry.source.as_str(),
                entry.raw_text,
                ms(entry.occurred_at),
                ms(*now),
                family,
                entry.status.as_str(),
                entry.external_key,
                entry.reply_to,
            ];
            match db.prepare_cached(INSERT_ENTRY_SQL).and_then(|mut s| s.execute(row)) {
                Ok(1) => {}
                Ok(_) => return Err(clean_unless(wrote)(StoreError::NotFound)),
                Err(e) => return Err(clean_unless(wrote)(map(e))),
            }
            entry_rest(db, &family, &id_text, *id, entry, jobs).map_err(Refused::Midway)
        }
        Queued::Turns { family_id, user_id, turns, .. } => {
            let (family, user) = (family_id.to_string(), user_id.to_string());
            let mut insert = db.prepare_cached(CHAT_TURN_SQL).map_err(|e| Refused::Midway(map(e)))?;
            for (i, t) in turns.iter().enumerate() {
                // A later turn's failure follows an earlier one's write.
                insert
                    .execute(params![Uuid::now_v7().to_string(), family, user, t.chat_id, t.role, t.content, ms(t.created_at)])
                    .map_err(|e| clean_unless(i > 0)(map(e)))?;
            }
            Ok(())
        }
    }
}

/// One chat turn, its text bound as a parameter so any text is stored exactly.
const CHAT_TURN_SQL: &str = "INSERT INTO chat_turns (id, family_id, user_id, chat_id, role, content, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// An entry's members, pending media and jobs, after its row.
fn entry_rest(db: &Connection, family: &str, id_text: &str, id: EntryId, entry: &NewEntry, jobs: &[JobKind]) -> StoreResult<()> {
    for member_id in &entry.member_ids {
        let member = member_id.to_string();
        // The sub-select refuses members of another family: the row is simply not written.
        let linked = db.prepare_cached(LINK_MEMBER_SQL).and_then(|mut s| s.execute(params![id_text, member, family])).map_err(map)?;
        if linked == 0 && !db.prepare_cached(MEMBER_LINKED_SQL).and_then(|mut s| s.exists(params![id_text, member])).map_err(map)? {
            return Err(StoreError::NotFound);
        }
    }
    for m in &entry.media {
        db.prepare_cached(PENDING_MEDIA_SQL)
            .and_then(|mut s| s.execute(params![Uuid::now_v7().to_string(), family, id_text, m.content_type, ms(Utc::now()), m.source_ref, m.kind]))
            .map_err(map)?;
    }
    if let Some(jobs) = jobs_json(id, 1, jobs) {
        db.prepare_cached(ENQUEUE_SQL).and_then(|mut s| s.execute(params![family, id_text, 1, MAX_JOB_ATTEMPTS, ms(Utc::now()), jobs])).map_err(map)?;
    }
    Ok(())
}

/// Read connections of the store's own, for the reads every message makes
/// (the token's user, the family's members), run on the caller's thread:
/// a read is a few microseconds of SQLite, less than the two hand-offs
/// to and from sqlx's connection thread it replaces.
pub(super) struct Readers {
    /// The database file; none for an in-memory database, whose one
    /// connection is borrowed from sqlx instead.
    path: Option<std::path::PathBuf>,
    idle: std::sync::Mutex<Vec<Connection>>,
}

impl Readers {
    pub(super) fn new(path: Option<std::path::PathBuf>) -> Self {
        Self { path, idle: std::sync::Mutex::new(Vec::new()) }
    }

    fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
        let db = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        db.execute_batch("PRAGMA query_only = ON")?;
        Ok(db)
    }
}

impl SqliteStore {
    /// Runs `read` on one of the store's read connections (opened on first
    /// need, kept for the next read), on this thread.
    pub(super) async fn read<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let Some(path) = &self.readers.path else {
            let mut conn = self.pool.acquire().await.map_err(map_err)?;
            let mut handle = conn.lock_handle().await.map_err(map_err)?;
            // SAFETY: as in `write_group`: sqlx's thread makes no call on the
            // handle while `handle` lives, and `db` is dropped before it.
            let db = unsafe { Connection::from_handle(handle.as_raw_handle().as_ptr()) }.map_err(map)?;
            let out = read(&db).map_err(map);
            drop(db);
            return out;
        };
        let idle = self.readers.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let db = match idle {
            Some(db) => db,
            None => Readers::open(path).map_err(|e| StoreError::Unavailable(Box::new(e)))?,
        };
        let out = read(&db).map_err(map);
        self.readers.idle.lock().unwrap_or_else(|e| e.into_inner()).push(db);
        out
    }
}

/// A UUID column.
pub(super) fn uuid_at(row: &rusqlite::Row, column: &str) -> rusqlite::Result<Uuid> {
    let text: String = row.get(column)?;
    Uuid::parse_str(&text).map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

/// A member as `SELECT * FROM members` reads it.
pub(super) fn member_at(row: &rusqlite::Row) -> rusqlite::Result<Member> {
    let aliases: String = row.get("aliases")?;
    let birth: Option<String> = row.get("birth_date")?;
    Ok(Member {
        id: uuid_at(row, "id")?,
        family_id: uuid_at(row, "family_id")?,
        name: row.get("name")?,
        aliases: serde_json::from_str(&aliases).map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))?,
        birth_date: birth.and_then(|b| NaiveDate::parse_from_str(&b, "%Y-%m-%d").ok()),
        created_at: at(row.get("created_at")?),
        age_notice_at: row.get::<_, Option<i64>>("age_notice_at")?.map(at),
    })
}
