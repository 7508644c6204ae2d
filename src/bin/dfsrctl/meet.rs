//! `dfsrctl meet …`: calls the meet in the running dfsrd over IRPC.

use crate::CliError;
use clap::Subcommand;
use samba_dfsr::ffi::meet_client;
use samba_dfsr::meet::FLAG_LOST_TO_CONFLICT;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum MeetCommand {
    /// Check that dfsrd answers; prints its pid.
    Ping,
    /// Counters of the meet.
    Status,
    /// Install a staged file at PATH in SHARE.
    Install {
        #[arg(long)]
        share: String,
        /// Relative to the share, '/'-separated.
        #[arg(long)]
        path: String,
        /// Move the replaced version to DfsrPrivate/ConflictAndDeleted.
        #[arg(long)]
        lost_to_conflict: bool,
        /// The update's UID, GUID:VERSION (for the ConflictAndDeleted manifest).
        #[arg(long, default_value = "00000000-0000-0000-0000-000000000000:0")]
        uid: String,
        staged: PathBuf,
    },
    /// Rename or move PATH to NEW_PATH in SHARE (the same file, a new name
    /// or parent).
    Move {
        #[arg(long)]
        share: String,
        #[arg(long)]
        path: String,
        #[arg(long)]
        new_path: String,
    },
    /// Remove PATH from SHARE (a tombstone). The file goes to
    /// DfsrPrivate/ConflictAndDeleted unless the share sets
    /// `dfsr:keep deleted = no`.
    Remove {
        #[arg(long)]
        share: String,
        #[arg(long)]
        path: String,
        /// Keep the removed file in ConflictAndDeleted whatever the share says.
        #[arg(long)]
        lost_to_conflict: bool,
        /// The tombstone's UID, GUID:VERSION (for the ConflictAndDeleted manifest).
        #[arg(long, default_value = "00000000-0000-0000-0000-000000000000:0")]
        uid: String,
    },
}

/// `GUID:VERSION` of `--uid`.
fn parse_uid(uid: &str) -> Result<(&str, u64), meet_client::CallError> {
    let bad = || meet_client::CallError {
        status: samba_dfsr::samba::ntstatus::NtStatus::INVALID_PARAMETER,
        reason: format!("--uid {uid:?}: expected GUID:VERSION"),
    };
    let (guid, version) = uid.rsplit_once(':').ok_or_else(bad)?;
    Ok((guid, version.parse().map_err(|_| bad())?))
}

pub fn run(cmd: &MeetCommand, conf: &Path, json: bool) -> Result<(), CliError> {
    match cmd {
        MeetCommand::Ping => {
            let pid = meet_client::ping(conf, std::process::id())?;
            if json {
                println!("{}", serde_json::json!({"pid": pid}));
            } else {
                println!("dfsrd (pid {pid}) answers as dfsr_meet");
            }
        }
        MeetCommand::Status => {
            let s = meet_client::status(conf)?;
            let c = &s.counters;
            let doc = serde_json::json!({
                "pid": s.pid, "version": s.version, "started_nttime": c.started_nttime,
                "installs_ok": c.installs_ok, "installs_failed": c.installs_failed,
                "installs_retry": c.installs_retry, "removes_ok": c.removes_ok,
                "in_progress": c.in_progress,
            });
            if json {
                println!("{doc}");
            } else {
                println!("dfsrd {} (pid {})", s.version, s.pid);
                println!("  installs: {} ok, {} failed, {} to retry", c.installs_ok, c.installs_failed, c.installs_retry);
                println!("  removes:  {} ok", c.removes_ok);
                println!("  in progress: {}", c.in_progress);
            }
        }
        MeetCommand::Install { share, path, lost_to_conflict, uid, staged } => {
            // dfsrd opens the file itself: hand it an absolute path.
            let staged = std::path::absolute(staged).unwrap_or_else(|_| staged.clone());
            let flags = if *lost_to_conflict { FLAG_LOST_TO_CONFLICT } else { 0 };
            meet_client::install(conf, share, path, &staged.to_string_lossy(), parse_uid(uid)?, flags)?;
            println!("installed [{share}] {path}");
        }
        MeetCommand::Move { share, path, new_path } => {
            meet_client::move_path(conf, share, path, new_path, 0)?;
            println!("moved [{share}] {path} to {new_path}");
        }
        MeetCommand::Remove { share, path, lost_to_conflict, uid } => {
            let flags = if *lost_to_conflict { FLAG_LOST_TO_CONFLICT } else { 0 };
            meet_client::remove(conf, share, path, parse_uid(uid)?, flags)?;
            println!("removed [{share}] {path}");
        }
    }
    Ok(())
}
