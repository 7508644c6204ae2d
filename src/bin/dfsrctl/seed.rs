//! `dfsrctl db seed`: a new replicated folder from a local directory tree.
//! Every file and directory gets a create update from our originator
//! (MS-FRS2 §3.3.4.6.2 UIDs and GVSNs of our database) and a staged file
//! (FRSX, §3.2.4.1.14) in the staging area named by its GVSN; the updates,
//! the folder's version vector and the originator counters are stored in
//! one transaction, so a failed seed leaves the database as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use samba_dfsr::engine::ids::{Guid, Uid};
use samba_dfsr::engine::local_change::NewFile;
use samba_dfsr::engine::update::Update;
use samba_dfsr::store::local_commit::{LocalChange, LocalChanges};
use samba_dfsr::store::{Database, OriginatorState, StagingArea};

use crate::db::CliResult;
use crate::staged;
use samba_dfsr::staging::writer::FileHeader;
use samba_dfsr::store::staged_file::CreateSpec;

struct Entry {
    path: PathBuf,
    parent: Uid,
    name: String,
    is_dir: bool,
}

pub fn seed(db_path: &Path, staging: &Path, group: Guid, folder: Guid, from: &Path, json: bool) -> CliResult {
    let top = std::fs::metadata(from).map_err(|e| format!("{}: {e}", from.display()))?;
    if !top.is_dir() {
        return Err(format!("{}: not a directory", from.display()).into());
    }
    if let Some(dir) = db_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    let area = StagingArea::new(staging);
    let mut db = Database::open(db_path)?;
    if db.folder_vector(&group, &folder)?.is_some() {
        return Err(format!("{}: folder {folder} of group {group} is already replicated here", db_path.display()).into());
    }
    let db_guid = match db.database_guid()? {
        Some(g) => g,
        None => samba_dfsr::random::new_guid()?,
    };
    // One database GUID numbers every folder's changes: start above the
    // versions any folder handed out (their counters are raised to ours
    // in the same transaction).
    let mut originator = db.resume_originator(folder, db_guid)?;
    let empty = tempfile(staging, "empty")?;
    let mut held: BTreeMap<Uid, Update> = BTreeMap::new();
    let mut staged: Vec<LocalChange> = Vec::new();
    let (mut files, mut dirs, mut bytes) = (0u64, 0u64, 0u64);
    // Breadth first, names sorted: parents are created before children.
    let mut queue = std::collections::VecDeque::from([(from.to_path_buf(), Uid::root_of(folder))]);
    let result = (|| -> CliResult {
        while let Some((dir, parent)) = queue.pop_front() {
            let mut entries = Vec::new();
            for e in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
                let e = e.map_err(|e| format!("{}: {e}", dir.display()))?;
                let path = e.path();
                let ft = e.file_type().map_err(|e| format!("{}: {e}", path.display()))?;
                let Some(name) = e.file_name().to_str().map(str::to_string) else {
                    return Err(format!("{}: the name is not UTF-8", path.display()).into());
                };
                if !ft.is_dir() && !ft.is_file() {
                    eprintln!("dfsrctl: {}: not a regular file or directory, skipped", path.display());
                    continue;
                }
                entries.push(Entry { path, parent, name, is_dir: ft.is_dir() });
            }
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            for e in entries {
                let md = std::fs::metadata(&e.path).map_err(|err| format!("{}: {err}", e.path.display()))?;
                let times = staged::basic_times(&md);
                let ctime = times[0];
                let spec = CreateSpec {
                    data: if e.is_dir { empty.clone() } else { e.path.clone() },
                    streams: Vec::new(),
                    header: FileHeader {
                        security: None,
                        attributes: if e.is_dir { 0x10 } else { 0x20 },
                        times,
                        reparse: None,
                    },
                    sparse: false,
                };
                let tmp = staging.join(format!(".seed-{}.tmp", staged.len()));
                let hash = staged::create(&spec, &tmp).map_err(|err| format!("{}: {err}", e.path.display()))?;
                let file = NewFile { attributes: spec.header.attributes, create_time: ctime as u64, hash };
                let u = originator
                    .create(&held, e.parent, &e.name, file, samba_dfsr::meet::nttime(std::time::SystemTime::now()))
                    .map_err(|err| format!("{}: {err}", e.path.display()))?;
                staged.push(LocalChange { update: u.clone(), staged_temp: Some(tmp), replaces: None });
                if e.is_dir {
                    dirs += 1;
                    queue.push_back((e.path.clone(), u.uid));
                } else {
                    files += 1;
                    bytes += md.len();
                }
                held.insert(u.uid, u);
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&empty);
    if let Err(e) = result {
        for t in staged.iter().filter_map(|c| c.staged_temp.as_ref()) {
            let _ = std::fs::remove_file(t);
        }
        return Err(e);
    }
    // Staged files placed, then one transaction; a failure keeps nothing
    // (store::local_commit).
    let changes = LocalChanges {
        database_guid: db_guid,
        group,
        folder,
        changes: staged,
        originator: OriginatorState { next_version: originator.next_version(), last_clock: originator.last_clock() },
    };
    db.commit_local_changes(&area, &changes)?;
    if json {
        println!(
            "{}",
            serde_json::json!({"database": db_guid.to_string(), "group": group.to_string(), "folder": folder.to_string(),
                "files": files, "directories": dirs, "bytes": bytes, "updates": held.len()})
        );
    } else {
        println!(
            "{}: folder {folder} seeded from {}: {files} files ({bytes} bytes), {dirs} directories; database {db_guid}",
            db_path.display(),
            from.display()
        );
    }
    Ok(())
}

fn tempfile(dir: &Path, tag: &str) -> CliResult<PathBuf> {
    let p = dir.join(format!(".seed-{tag}-{}", std::process::id()));
    std::fs::File::create(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(p)
}
