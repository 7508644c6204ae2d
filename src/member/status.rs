//! What the running member reports: one JSON file,
//! `<state directory>/dfsr/member-status.json`, rewritten whole (temporary
//! and rename) after every round, read by `dfsrctl replication status`
//! and `backlog`. Per inbound session: its state, the reason it last
//! failed, when it retries, what it received; per folder: what the meet
//! placed, what waits, conflicts.

use serde_json::{json, Map, Value};

use crate::engine::ids::Guid;

/// The file's name inside `<state directory>/dfsr`.
pub const STATUS_FILE_NAME: &str = "member-status.json";

/// One inbound connection's session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionStatus {
    pub group: Guid,
    pub connection: Guid,
    pub partner: String,
    pub address: String,
    /// `connecting`, `in sync`, `failed`, `waiting`.
    pub state: String,
    /// Why the last round failed.
    pub reason: Option<String>,
    /// Rounds failed in a row.
    pub failures: u32,
    /// Seconds until the next round.
    pub retry_in: u64,
    /// Unix time of the last round that ended in sync.
    pub last_in_sync: Option<u64>,
    /// Unix time the open connection was made (None: not connected).
    pub connected_since: Option<u64>,
    /// AsyncPoll answers on it (CHANGE_NOTIFY: the partner changed, or
    /// its 5-minute wait ran out).
    pub notifications: u64,
    pub updates_received: u64,
    pub files_downloaded: u64,
    pub bytes_downloaded: u64,
    /// Per folder: updates the partner offered in the last round that
    /// were not yet placed here when it ended.
    pub backlog: Vec<(Guid, u64)>,
}

/// One replicated folder on this member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FolderProgress {
    pub group: Guid,
    pub folder: Guid,
    pub share: String,
    pub installed: u64,
    pub moved: u64,
    pub removed: u64,
    /// Files whose content already matched (not downloaded).
    pub kept: u64,
    /// Files moved to DfsrPrivate/PreExisting.
    pub pre_existing: u64,
    /// Waiting to be placed (open by a client, parent missing, failed).
    pub pending: u64,
    pub conflicts: u64,
    /// Installs put off because a client had the file open.
    pub retries: u64,
    /// Local changes the scans made into versions.
    pub local_changes: u64,
    /// Local changes undone (a read-only membership).
    pub reverted: u64,
    /// Unix time of the last complete scan.
    pub last_scan: Option<u64>,
    /// Client changes smbd recorded in the journal that were taken up.
    pub captured: u64,
    /// Unix time the last recorded change was taken up.
    pub last_capture: Option<u64>,
    /// Changes recorded in the journal and not yet taken up.
    pub journal_depth: u64,
    pub last_error: Option<String>,
}

/// The whole report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberStatus {
    pub pid: u32,
    pub member: String,
    /// Unix time of the report.
    pub updated: u64,
    /// Why the member is not replicating at all (bad credentials file,
    /// unreadable configuration), if so.
    pub problem: Option<String>,
    pub sessions: Vec<SessionStatus>,
    pub folders: Vec<FolderProgress>,
}

fn opt_text(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| json!(s))
}

impl SessionStatus {
    pub fn json(&self) -> Value {
        json!({
            "group": self.group.to_string(), "connection": self.connection.to_string(),
            "partner": self.partner, "address": self.address, "state": self.state,
            "reason": opt_text(&self.reason), "failures": self.failures, "retry_in": self.retry_in,
            "last_in_sync": self.last_in_sync, "connected_since": self.connected_since,
            "notifications": self.notifications, "updates_received": self.updates_received,
            "files_downloaded": self.files_downloaded, "bytes_downloaded": self.bytes_downloaded,
            "backlog": self.backlog.iter().map(|(f, n)| json!({"folder": f.to_string(), "updates": n})).collect::<Vec<_>>(),
        })
    }

    fn from_json(v: &Value) -> Option<SessionStatus> {
        let o = v.as_object()?;
        Some(SessionStatus {
            group: guid(o, "group")?,
            connection: guid(o, "connection")?,
            partner: text(o, "partner"),
            address: text(o, "address"),
            state: text(o, "state"),
            reason: o.get("reason").and_then(Value::as_str).map(str::to_string),
            failures: num(o, "failures") as u32,
            retry_in: num(o, "retry_in"),
            last_in_sync: o.get("last_in_sync").and_then(Value::as_u64),
            connected_since: o.get("connected_since").and_then(Value::as_u64),
            notifications: num(o, "notifications"),
            updates_received: num(o, "updates_received"),
            files_downloaded: num(o, "files_downloaded"),
            bytes_downloaded: num(o, "bytes_downloaded"),
            backlog: o
                .get("backlog")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|b| Some((guid(b.as_object()?, "folder")?, b.get("updates")?.as_u64()?)))
                .collect(),
        })
    }

    /// Updates of `folder` the last round left unplaced.
    pub fn backlog(&self, folder: &Guid) -> Option<u64> {
        self.backlog.iter().find(|(f, _)| f == folder).map(|(_, n)| *n)
    }
}

impl FolderProgress {
    pub fn json(&self) -> Value {
        json!({
            "group": self.group.to_string(), "folder": self.folder.to_string(), "share": self.share,
            "installed": self.installed, "moved": self.moved, "removed": self.removed, "kept": self.kept,
            "pre_existing": self.pre_existing, "pending": self.pending, "conflicts": self.conflicts,
            "retries": self.retries, "local_changes": self.local_changes, "reverted": self.reverted, "last_scan": self.last_scan,
            "captured": self.captured, "last_capture": self.last_capture, "journal_depth": self.journal_depth,
            "last_error": opt_text(&self.last_error),
        })
    }

    fn from_json(v: &Value) -> Option<FolderProgress> {
        let o = v.as_object()?;
        Some(FolderProgress {
            group: guid(o, "group")?,
            folder: guid(o, "folder")?,
            share: text(o, "share"),
            installed: num(o, "installed"),
            moved: num(o, "moved"),
            removed: num(o, "removed"),
            kept: num(o, "kept"),
            pre_existing: num(o, "pre_existing"),
            pending: num(o, "pending"),
            conflicts: num(o, "conflicts"),
            retries: num(o, "retries"),
            local_changes: num(o, "local_changes"),
            reverted: num(o, "reverted"),
            last_scan: o.get("last_scan").and_then(Value::as_u64),
            captured: num(o, "captured"),
            last_capture: o.get("last_capture").and_then(Value::as_u64),
            journal_depth: num(o, "journal_depth"),
            last_error: o.get("last_error").and_then(Value::as_str).map(str::to_string),
        })
    }
}

fn guid(o: &Map<String, Value>, k: &str) -> Option<Guid> {
    o.get(k)?.as_str()?.parse().ok()
}

fn text(o: &Map<String, Value>, k: &str) -> String {
    o.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

fn num(o: &Map<String, Value>, k: &str) -> u64 {
    o.get(k).and_then(Value::as_u64).unwrap_or(0)
}

impl MemberStatus {
    pub fn to_json(&self) -> Value {
        json!({
            "pid": self.pid, "member": self.member, "updated": self.updated, "problem": opt_text(&self.problem),
            "sessions": self.sessions.iter().map(SessionStatus::json).collect::<Vec<_>>(),
            "folders": self.folders.iter().map(FolderProgress::json).collect::<Vec<_>>(),
        })
    }

    /// Reads the file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<MemberStatus, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not a member report: {e}"))?;
        let o = v.as_object().ok_or("not a member report: not an object")?;
        let list = |k: &str| o.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(MemberStatus {
            pid: num(o, "pid") as u32,
            member: text(o, "member"),
            updated: num(o, "updated"),
            problem: o.get("problem").and_then(Value::as_str).map(str::to_string),
            sessions: list("sessions").iter().filter_map(SessionStatus::from_json).collect(),
            folders: list("folders").iter().filter_map(FolderProgress::from_json).collect(),
        })
    }

    pub fn connection(&self, id: &Guid) -> Option<&SessionStatus> {
        self.sessions.iter().find(|s| s.connection == *id)
    }

    pub fn folder(&self, group: &Guid, folder: &Guid) -> Option<&FolderProgress> {
        self.folders.iter().find(|f| f.group == *group && f.folder == *folder)
    }

    pub fn header_json(&self) -> Value {
        json!({"pid": self.pid, "member": self.member, "updated": self.updated, "problem": opt_text(&self.problem)})
    }

    pub fn header_text(&self) -> String {
        let age = crate::member::status::unix_now().saturating_sub(self.updated);
        let mut t = format!("dfsrd member pid {}, reported {age} s ago", self.pid);
        if let Some(p) = &self.problem {
            t.push_str(&format!("; not replicating: {p}"));
        }
        t
    }

    /// One session as `status` prints it.
    pub fn session_text(s: &Map<String, Value>) -> String {
        let n = |k: &str| s.get(k).and_then(Value::as_u64).unwrap_or(0);
        let t = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or("");
        let mut line = format!(
            "{} ({}), {} updates received, {} files ({} bytes) downloaded",
            t("state"),
            t("address"),
            n("updates_received"),
            n("files_downloaded"),
            n("bytes_downloaded")
        );
        if let Some(t0) = s.get("connected_since").and_then(Value::as_u64) {
            let ago = unix_now().saturating_sub(t0);
            line.push_str(&format!("; connected for {ago} s, {} change notifications", n("notifications")));
        }
        if let Some(r) = s.get("reason").and_then(Value::as_str) {
            line.push_str(&format!("; last error: {r} ({} in a row, next try in {} s)", n("failures"), n("retry_in")));
        }
        line
    }

    /// Writes the report to `path` whole (a temporary beside it, renamed).
    pub fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, format!("{}\n", self.to_json()))?;
        std::fs::rename(&tmp, path)
    }
}

/// Puts `session`'s live numbers into the report at `path` (the rest as
/// the last round wrote it): progress while a long pull runs.
pub fn update_session(path: &std::path::Path, session: &SessionStatus) -> std::io::Result<()> {
    let bytes = std::fs::read(path)?;
    let mut report = MemberStatus::parse(&bytes).map_err(std::io::Error::other)?;
    match report.sessions.iter_mut().find(|s| s.connection == session.connection) {
        Some(s) => *s = session.clone(),
        None => report.sessions.push(session.clone()),
    }
    report.updated = unix_now();
    report.write(path)
}

/// Seconds since 1970 (the report's times).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_round_trips_through_its_file_form() {
        let s = MemberStatus {
            pid: 7,
            member: "B".into(),
            updated: 99,
            problem: None,
            sessions: vec![SessionStatus {
                group: Guid([1; 16]),
                connection: Guid([2; 16]),
                partner: "A".into(),
                address: "10.0.0.1:5722".into(),
                state: "failed".into(),
                reason: Some("logon failure".into()),
                failures: 3,
                retry_in: 8,
                connected_since: Some(unix_now() - 5),
                notifications: 4,
                backlog: vec![(Guid([3; 16]), 12)],
                ..Default::default()
            }],
            folders: vec![FolderProgress { group: Guid([1; 16]), folder: Guid([3; 16]), share: "data".into(), installed: 5, ..Default::default() }],
        };
        let back = MemberStatus::parse(s.to_json().to_string().as_bytes()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.connection(&Guid([2; 16])).unwrap().backlog(&Guid([3; 16])), Some(12));
        let text = MemberStatus::session_text(s.sessions[0].json().as_object().unwrap());
        assert!(text.contains("logon failure (3 in a row, next try in 8 s)"), "{text}");
        assert!(text.contains("4 change notifications"), "{text}");
        assert!(MemberStatus::parse(b"[").is_err());
    }
}
