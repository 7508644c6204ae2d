// Where the Windows-made MS-XCA vectors are, read in place; included by
// the unit tests (tests.rs) and by benches/xpress.rs.

/// `DFSR_TESTDATA` (the `shared/testdata` folder) if set, else `shared/`
/// beside the checkout, else the team's `/work/shared` (CI clones
/// elsewhere).
fn testdata() -> std::path::PathBuf {
    use std::path::{Path, PathBuf};
    let candidates = [
        std::env::var_os("DFSR_TESTDATA").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata")),
        Some(PathBuf::from("/work/shared/testdata")),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(|p| p.join("xca"))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| panic!("MS-XCA test vectors not found: set DFSR_TESTDATA to shared/testdata"))
}
