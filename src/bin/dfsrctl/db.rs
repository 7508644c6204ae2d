//! `dfsrctl db`: look at the replication database
//! (`<state directory>/dfsr/dfsr.tdb`): check its consistency, dump it.
//! Both open the file read-write (TDB recovery of an interrupted commit
//! needs it) but never change a record.

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use samba_dfsr::samba::smbconf;
use samba_dfsr::store::{Database, DumpError, DIR_NAME, FILE_NAME};

pub(crate) type CliResult<T = ()> = Result<T, Box<dyn Error>>;

/// `dfsrctl db …` subcommands.
#[derive(Subcommand)]
pub enum DbCommand {
    /// Check every record and index; exits non-zero naming each
    /// inconsistency found.
    Check {
        /// The database (default: <state directory>/dfsr/dfsr.tdb).
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Print every record, sorted by key (one JSON object per line with
    /// --json).
    Dump {
        /// The database (default: <state directory>/dfsr/dfsr.tdb).
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Start replicating a new folder from a local directory tree (this
    /// member is its primary): originate a create for every file and
    /// directory, stage each one, and store the updates and the folder's
    /// version vector. dfsrd then serves the folder to partners.
    Seed {
        /// The replication group GUID.
        #[arg(long)]
        group: String,
        /// The replicated folder (content set) GUID.
        #[arg(long)]
        folder: String,
        /// The directory whose contents become the folder's.
        #[arg(long)]
        from: PathBuf,
        /// The database (default: <state directory>/dfsr/dfsr.tdb).
        #[arg(long)]
        db: Option<PathBuf>,
        /// The staging area (default: <state directory>/dfsr/staging).
        #[arg(long)]
        staging: Option<PathBuf>,
    },
}

/// `--db`, or the default place under smb.conf's state directory.
pub(crate) fn db_path(given: &Option<PathBuf>, configfile: &Path) -> CliResult<PathBuf> {
    if let Some(p) = given {
        return Ok(p.clone());
    }
    Ok(smbconf::state_directory(configfile)?.join(DIR_NAME).join(FILE_NAME))
}

/// Runs one `db` subcommand; an inconsistent database is an error (non-zero exit).
pub fn run(cmd: &DbCommand, configfile: &Path, json: bool) -> CliResult {
    match cmd {
        DbCommand::Check { db } => check(&db_path(db, configfile)?, json),
        DbCommand::Dump { db } => dump(&db_path(db, configfile)?, json),
        DbCommand::Seed { group, folder, from, db, staging } => {
            let staging = staging_path(staging, configfile)?;
            crate::seed::seed(&db_path(db, configfile)?, &staging, parse_guid("--group", group)?, parse_guid("--folder", folder)?, from, json)
        }
    }
}

/// `--staging`, or the default place under smb.conf's state directory.
pub(crate) fn staging_path(given: &Option<PathBuf>, configfile: &Path) -> CliResult<PathBuf> {
    if let Some(p) = given {
        return Ok(p.clone());
    }
    Ok(smbconf::state_directory(configfile)?.join(DIR_NAME).join(samba_dfsr::store::staging_area::DIR_NAME))
}

/// A GUID argument (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, braces allowed).
pub(crate) fn parse_guid(arg: &str, s: &str) -> CliResult<samba_dfsr::engine::ids::Guid> {
    s.trim().parse().map_err(|e| format!("{arg}: {e}").into())
}

fn check(path: &Path, json: bool) -> CliResult {
    let db = Database::open_existing(path)?;
    let found = db.check()?;
    if json {
        let doc = serde_json::json!({
            "path": path,
            "inconsistencies": found.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        println!("{doc}");
    } else {
        for i in &found {
            println!("{}: {i}", path.display());
        }
    }
    if found.is_empty() {
        if !json {
            println!("{}: consistent", path.display());
        }
        Ok(())
    } else {
        Err(format!("{}: {} inconsistencies", path.display(), found.len()).into())
    }
}

fn dump(path: &Path, json: bool) -> CliResult {
    let db = Database::open_existing(path)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    db.dump_with(|e| -> Result<(), DumpError> {
        if json {
            writeln!(out, "{}", e.json())?;
        } else {
            writeln!(out, "{}", e.text())?;
        }
        Ok(())
    })?;
    out.flush()?;
    Ok(())
}
