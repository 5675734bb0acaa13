//! The shape ARCHITECTURE.md promises, checked: the crate graph points one
//! way, and only the web edge and the use-case crate know URL paths.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each crate and the workspace crates it may depend on (normal
/// dependencies; dev-dependencies are for tests). A new edge is a design
/// decision: add it here and to ARCHITECTURE.md together.
const ALLOWED: &[(&str, &[&str])] = &[
    ("consign-domain", &[]),
    ("consign-db", &["consign-domain"]),
    ("consign-payments", &["consign-domain"]),
    ("consign-channels", &["consign-domain"]),
    ("consign-app", &["consign-domain", "consign-db", "consign-payments", "consign-channels"]),
    ("consign-web", &["consign-domain", "consign-db", "consign-payments", "consign-channels", "consign-app"]),
    ("consign-jobs", &["consign-domain", "consign-db", "consign-payments", "consign-channels", "consign-app"]),
    (
        "consign-testkit",
        &[
            "consign-domain",
            "consign-db",
            "consign-payments",
            "consign-channels",
            "consign-app",
            "consign-web",
            "consign-jobs",
        ],
    ),
    (
        "consign",
        &[
            "consign-domain",
            "consign-db",
            "consign-payments",
            "consign-channels",
            "consign-app",
            "consign-web",
            "consign-jobs",
        ],
    ),
    ("consign-bench", &["consign-domain", "consign-db"]),
];

/// The crates that must not know Consign's routes: they are reached by
/// them, and a path built there drifts from the router unseen.
const NO_ROUTES: &[&str] = &["consign-domain", "consign-db", "consign-payments", "consign-channels", "consign-jobs"];

/// How Consign's paths start.
const ROUTE_PREFIXES: &[&str] = &["/api/v1", "/admin/", "/admin\"", "/shop/", "/shop\""];

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the crates directory").to_path_buf()
}

/// The workspace crates `name` depends on, read from its manifest's
/// `[dependencies]` table.
fn dependencies(name: &str) -> Vec<String> {
    let manifest = std::fs::read_to_string(crates_dir().join(name).join("Cargo.toml")).expect("a manifest");
    let mut in_dependencies = false;
    let mut found = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        let key = line.split(['.', '=', ' ']).next().unwrap_or_default();
        if in_dependencies && key.starts_with("consign") {
            found.push(key.to_owned());
        }
    }
    found
}

#[test]
fn the_crate_graph_is_one_way() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    // Every crate in the workspace is in the table.
    let mut on_disk: Vec<String> = std::fs::read_dir(crates_dir())
        .expect("the crates directory")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("Cargo.toml").exists())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = allowed.keys().map(|name| (*name).to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "every crate has a row in ALLOWED");

    for (name, may_use) in &allowed {
        for dependency in dependencies(name) {
            assert!(may_use.contains(&dependency.as_str()), "{name} must not depend on {dependency}");
        }
    }
    // The table itself has no cycle: each crate only uses crates listed
    // before it in a topological order.
    let mut placed: Vec<&str> = Vec::new();
    while placed.len() < allowed.len() {
        let next = allowed
            .iter()
            .find(|(name, uses)| !placed.contains(name) && uses.iter().all(|used| placed.contains(used)))
            .map(|(name, _)| *name);
        placed.push(next.expect("the allowed graph has a cycle"));
    }
}

/// The Rust files under `dir`.
fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    files_ending(dir, &["rs"], found);
}

/// The files under `dir` whose extension is one of `extensions`.
fn files_ending(dir: &Path, extensions: &[&str], found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source directory").filter_map(|entry| entry.ok()) {
        let path = entry.path();
        if path.is_dir() {
            files_ending(&path, extensions, found);
        } else if path.extension().is_some_and(|ext| extensions.iter().any(|wanted| ext == *wanted)) {
            found.push(path);
        }
    }
}

#[test]
fn the_repository_points_at_nothing_outside_it() {
    let root = crates_dir().parent().expect("the repository").to_path_buf();
    let mut files = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    for dir in ["crates", "docs", "scripts"] {
        files_ending(&root.join(dir), &["rs", "md", "html", "js", "css", "toml", "sh"], &mut files);
    }
    let this_file = Path::new(file!()).file_name().expect("a file name");
    let mut offenders = Vec::new();
    for file in files.iter().filter(|f| f.file_name() != Some(this_file)) {
        let text = std::fs::read_to_string(file).expect("a text file");
        for (number, line) in text.lines().enumerate() {
            if ["SPEC.md", "SPEC §", "../shared"].iter().any(|outside| line.contains(outside)) {
                offenders.push(format!("{}:{}: {}", file.display(), number + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "cite docs/api.md or the code instead:\n{}", offenders.join("\n"));
}

#[test]
fn no_route_paths_outside_the_web_edge_and_the_use_case_crate() {
    let mut offenders = Vec::new();
    for name in NO_ROUTES {
        let mut files = Vec::new();
        rust_files(&crates_dir().join(name).join("src"), &mut files);
        assert!(!files.is_empty(), "{name} has sources");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a source file");
            for (number, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue; // a comment may name the route it is about
                }
                if ROUTE_PREFIXES.iter().any(|prefix| line.contains(prefix)) {
                    offenders.push(format!("{}:{}: {}", file.display(), number + 1, line.trim()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "route paths belong in consign-web or consign_app::links:\n{}", offenders.join("\n"));
}
