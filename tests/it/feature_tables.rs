//! The feature table is written twice (the README, the crate docs): both
//! must say exactly what `Cargo.toml` declares.

const README: &str = include_str!("../../README.md");
const LIB: &str = include_str!("../../src/lib.rs");
const MANIFEST: &str = include_str!("../../Cargo.toml");

/// The rows of the first `| Name | Description | Default |` table: each
/// feature's name and whether it says it is on by default.
fn table(text: &str) -> Vec<(String, bool)> {
    text.lines()
        .map(|l| l.trim_start_matches("//!").trim())
        .skip_while(|l| !l.starts_with("| Name | Description | Default |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let name = cells[1].trim_matches('`').to_string();
            let default = match cells[cells.len() - 2] {
                "yes" => true,
                "no" => false,
                other => panic!("{name}: default column says {other:?}"),
            };
            (name, default)
        })
        .collect()
}

fn manifest() -> Vec<(String, bool)> {
    let manifest: toml::Table = MANIFEST.parse().unwrap();
    let features = manifest["features"].as_table().unwrap();
    let defaults: Vec<&str> = features["default"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut rows: Vec<(String, bool)> = features
        .keys()
        // `fuzzing` is no public API: hidden entry points for fuzz/.
        .filter(|name| !matches!(name.as_str(), "default" | "fuzzing"))
        .map(|name| (name.clone(), defaults.contains(&name.as_str())))
        .collect();
    rows.sort();
    rows
}

#[test]
fn the_feature_tables_say_what_the_manifest_declares() {
    let mut readme = table(README);
    let mut lib = table(LIB);
    assert!(!readme.is_empty(), "no feature table in the README");
    readme.sort();
    lib.sort();
    assert_eq!(readme, manifest(), "README.md's feature table");
    assert_eq!(lib, manifest(), "the crate docs' feature table");
}
