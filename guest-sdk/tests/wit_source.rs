//! The SDK builds from the repository's one WIT source: every file of
//! `wit/` is what the SDK compiles against, byte for byte, and the SDK has
//! no WIT file of its own.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "wit") {
                let bytes = std::fs::read(&path).expect("read");
                let relative = path.strip_prefix(root).expect("under root").to_path_buf();
                found.insert(relative, bytes);
            }
        }
    }
    found
}

#[test]
fn rm1_sdk_wit_is_the_repository_wit() {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("wit");
    let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    let (sdk, repository) = (files(&sdk), files(&repository));
    assert!(
        repository.keys().any(|p| p.ends_with("rules.wit")),
        "no rules.wit under wit/: {:?}",
        repository.keys()
    );
    assert_eq!(
        sdk.keys().collect::<Vec<_>>(),
        repository.keys().collect::<Vec<_>>(),
        "guest-sdk/wit and wit/ hold different files"
    );
    for (path, bytes) in &repository {
        assert!(
            sdk.get(path) == Some(bytes),
            "guest-sdk/wit/{} differs from wit/{}: the SDK must build from wit/",
            path.display(),
            path.display()
        );
    }
}
