//! The seed corpus still means what its names say: each `ok-` seed is accepted by its target's
//! reader and each `no-` seed refused, the target's checks hold on every one, and the seeds the
//! generator makes are all on disk (a change of a message's format shows here first; run
//! `cargo run --example make_seeds`).

use std::collections::BTreeSet;
use std::path::Path;

use sleutel_fuzz::targets::ALL;

#[test]
fn seeds_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let mut failures = Vec::new();
    for (target, run) in ALL {
        let folder = root.join(target);
        let mut names = BTreeSet::new();
        for entry in std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("{target}: {e}")) {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let data = std::fs::read(&path).unwrap();
            let expected = match &name[..3] {
                "ok-" => true,
                "no-" => false,
                _ => panic!("{target}/{name}: a seed's name starts with ok- or no-"),
            };
            if run(&data) != expected {
                failures.push(format!("{target}/{name}"));
            }
            names.insert(name);
        }
        assert!(
            names.iter().any(|n| n.starts_with("ok-")),
            "{target} has no accepted seed"
        );
    }
    for seed in sleutel_fuzz::seeds::all() {
        let path = root.join(seed.target).join(&seed.name);
        if std::fs::read(&path).ok().as_deref() != Some(seed.data.as_slice()) {
            failures.push(format!(
                "{}/{} differs from the generator",
                seed.target, seed.name
            ));
        }
    }
    assert!(failures.is_empty(), "seeds not as named: {failures:#?}");
}

#[test]
fn every_target_has_a_binary_and_a_seed_folder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for (target, _) in ALL {
        assert!(
            root.join("fuzz_targets")
                .join(format!("{target}.rs"))
                .exists(),
            "{target}"
        );
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "{target}"
        );
        assert!(root.join("seeds").join(target).is_dir(), "{target}");
    }
}
