//! `cargo bench --bench meet`: installs per second through the meet,
//! beside an SMB client writing the same files to the same smbd, and beside
//! a local copy (the floor), in one run.
//!
//! Workload: N files (BENCH_FILES, default 2000) of 4 KiB, each with one
//! alternate stream and, through the meet, a custom ACL. The meet route
//! installs staged files made beforehand, calling dfsrd over IRPC from this
//! process (one IRPC connection per call, as dfsrctl does). The SMB route
//! is one smbclient session that puts each file and its stream (smbclient
//! cannot set ACLs, so that route does less work). The floor is `cp -r`
//! plus `setfattr --restore` of the stream xattrs. Not a test: it prints.

#[path = "../tests/support/mod.rs"]
mod support;

use samba_dfsr::ffi::meet_client;
use samba_dfsr::staging::frsx::FrsxWriter;
use samba_dfsr::staging::marshal::{MarshalWriter, Metadata, MARSHAL_VERSION};
use samba_dfsr::staging::security_descriptor::SecurityDescriptor;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::process::Command;
use std::time::Instant;
use support::{Dfsrd, Smbd, SmbdConfig, TestDir};

const SDDL: &str = "O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(D;;0x40000;;;AN)(A;;0x1301bf;;;WD)";

fn main() {
    let n: usize = std::env::var("BENCH_FILES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let work = TestDir::new("bench-meet");
    let src = work.0.join("src");
    let staged = work.0.join("staged");
    fs::create_dir_all(&src).unwrap();
    fs::create_dir_all(&staged).unwrap();
    let sd = SecurityDescriptor::from_sddl(SDDL).expect("bench SDDL").to_bytes();
    let now = samba_dfsr::staging::filetime::from_system_time(std::time::SystemTime::now());
    let mut xattrs = String::new();
    for i in 0..n {
        let data: Vec<u8> = (0..4096u32).map(|j| ((i as u32).wrapping_mul(31) ^ j) as u8).collect();
        let ads = format!("stream of file {i}\n").repeat(4);
        fs::write(src.join(format!("f{i:05}")), &data).unwrap();
        fs::write(src.join(format!("f{i:05}.ads")), &ads).unwrap();
        let f = BufWriter::new(File::create(staged.join(format!("f{i:05}.staged"))).unwrap());
        let mut w = MarshalWriter::new(FrsxWriter::new(f));
        let meta = Metadata {
            version: MARSHAL_VERSION,
            creation_time: now,
            last_access_time: now,
            last_write_time: now,
            change_time: now,
            attributes: 0x20,
            sd_control: 0,
            primary_data_size: data.len() as u64,
        };
        w.metadata(&meta).unwrap();
        w.security(&sd).unwrap();
        w.data(&data[..], data.len() as u64).unwrap();
        w.alternate("note", ads.as_bytes(), ads.len() as u64).unwrap();
        let (frsx, _) = w.finish().unwrap();
        frsx.finish().unwrap().flush().unwrap();
        xattrs += &format!(
            "# file: floor/f{i:05}\nuser.DosStream.note:$DATA=0x{}\n\n",
            ads.bytes().map(|b| format!("{b:02x}")).collect::<String>()
        );
    }
    let smbd = Smbd::start(SmbdConfig { log_level: "0".into(), ..Default::default() });
    let _dfsrd = Dfsrd::start(&smbd.conf);

    // The meet: into data/meet/.
    let t = Instant::now();
    for i in 0..n {
        let st = staged.join(format!("f{i:05}.staged"));
        meet_client::install(&smbd.conf, "data", &format!("meet/f{i:05}"), &st.to_string_lossy(), ("00000000-0000-0000-0000-000000000000", 0), 0)
            .unwrap_or_else(|e| panic!("install f{i:05}: {e}"));
    }
    let meet = n as f64 / t.elapsed().as_secs_f64();

    // An SMB client: into data/smb/, one session.
    let mut cmds = String::from("mkdir smb; cd smb; ");
    for i in 0..n {
        let f = src.join(format!("f{i:05}"));
        cmds += &format!("put {} f{i:05}; put {}.ads f{i:05}:note; ", f.display(), f.display());
    }
    let script = work.0.join("smb.cmds");
    fs::write(&script, cmds.replace("; ", "\n")).unwrap();
    let t = Instant::now();
    let out = Command::new("smbclient")
        .arg(smbd.unc("data"))
        .args(["-p", &smbd.port.to_string(), "-U", &smbd.credentials()])
        .stdin(File::open(&script).unwrap())
        .output()
        .unwrap();
    let smb = n as f64 / t.elapsed().as_secs_f64();
    assert!(out.status.success(), "smbclient: {}", String::from_utf8_lossy(&out.stderr));

    // The floor: a local copy and the same stream xattrs, no ACLs.
    let floor = work.0.join("floor");
    fs::create_dir_all(&floor).unwrap();
    let xfile = work.0.join("xattrs");
    fs::write(&xfile, xattrs).unwrap();
    let t = Instant::now();
    let cp = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cp {src}/f?????  {floor}/ && cd {work} && setfattr --restore={x}",
            src = src.display(),
            floor = floor.display(),
            work = work.0.display(),
            x = xfile.display()
        ))
        .status()
        .unwrap();
    let local = n as f64 / t.elapsed().as_secs_f64();
    assert!(cp.success());

    println!("meet bench: {n} files of 4 KiB with one stream");
    println!("  meet (IRPC, data+stream+ACL+attrs+times): {meet:8.0} files/s");
    println!("  smbclient put (data+stream, no ACL):      {smb:8.0} files/s   meet/smbclient = {:.2}", meet / smb);
    println!("  local cp + setfattr (floor, no ACL):      {local:8.0} files/s   meet/floor = {:.2}", meet / local);
}
