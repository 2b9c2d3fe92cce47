//! A compose study's manifests made one: `flashsale study` runs one mode per invocation and
//! leaves a one-mode manifest in `raw/<mode>/runs.json` (its runs' folders relative to the
//! study folder); [`merge`] puts them together as the `runs.json` a native comparison writes,
//! so the report reads a study like any comparison.

use super::manifest::{Manifest, MANIFEST_FILE};
use anyhow::Context;
use std::path::Path;

/// The order modes are shown in; any other comes after them, by name.
const MODE_ORDER: [&str; 2] = ["sync", "async"];

/// Every `raw/<mode>/runs.json` of `dir` as one manifest, modes in the order sync, async. Same
/// scenario and same settings (but the mode) required; a mode missing is fine.
pub fn merge(dir: &Path) -> anyhow::Result<Manifest> {
    let raw = dir.join("raw");
    let entries = std::fs::read_dir(&raw)
        .with_context(|| format!("reading {} (is this a study folder?)", raw.display()))?;
    let mut modes: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join(MANIFEST_FILE).is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    modes.sort_by_key(|m| {
        let rank = MODE_ORDER.iter().position(|o| o == m);
        (rank.unwrap_or(MODE_ORDER.len()), m.clone())
    });
    anyhow::ensure!(
        !modes.is_empty(),
        "no raw/<mode>/{MANIFEST_FILE} in {}: run `flashsale study` in each mode first",
        dir.display()
    );
    let mut manifests = Vec::new();
    for mode in &modes {
        let manifest = Manifest::load(&raw.join(mode))?;
        let file = format!("raw/{mode}/{MANIFEST_FILE}");
        anyhow::ensure!(
            manifest.settings.modes == [mode.as_str()]
                && manifest.suites.iter().all(|s| &s.mode == mode)
                && manifest.runs.iter().all(|r| &r.mode == mode),
            "{file} is not a manifest of mode {mode} alone (settings.modes {:?})",
            manifest.settings.modes
        );
        manifests.push((file, manifest));
    }
    let (first_file, first) = &manifests[0];
    let mut merged = first.clone();
    merged.settings.modes = modes.clone();
    merged.suites.clear();
    merged.runs.clear();
    for (file, manifest) in &manifests {
        anyhow::ensure!(
            manifest.scenario == first.scenario,
            "{file} is of scenario {}, {first_file} of {}: a study compares one scenario",
            manifest.scenario,
            first.scenario
        );
        let differences = differences(first, manifest)?;
        anyhow::ensure!(
            differences.is_empty(),
            "{file} and {first_file} were run with other settings: {}",
            differences.join("; ")
        );
        merged.created_at = merged.created_at.min(manifest.created_at);
        merged.suites.extend(manifest.suites.iter().cloned());
        merged.runs.extend(manifest.runs.iter().cloned());
    }
    Ok(merged)
}

/// The settings (but the mode) in which `b` differs from `a`: `name: a vs b`.
fn differences(a: &Manifest, b: &Manifest) -> anyhow::Result<Vec<String>> {
    let as_json = |m: &Manifest| {
        let mut settings = m.settings.clone();
        settings.modes.clear();
        serde_json::to_value(settings)
    };
    let (a, b) = (as_json(a)?, as_json(b)?);
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        anyhow::bail!("settings are not an object");
    };
    Ok(a.iter()
        .filter(|(name, value)| b.get(*name) != Some(value))
        .map(|(name, value)| {
            let other = b.get(name).cloned().unwrap_or_default();
            format!("{name}: {value} vs {other}")
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture comparison's manifest, cut into one manifest per mode as `flashsale study`
    /// writes them, in `dir/raw/<mode>/`.
    fn study(dir: &Path, change: impl Fn(&mut Manifest)) -> Manifest {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report");
        let whole = Manifest::load(&fixture).expect("the fixture manifest");
        for mode in ["async", "sync"] {
            let mut one = whole.clone();
            one.settings.modes = vec![mode.to_string()];
            one.suites.retain(|s| s.mode == mode);
            one.runs.retain(|r| r.mode == mode);
            if mode == "async" {
                change(&mut one);
            }
            let folder = dir.join("raw").join(mode);
            std::fs::create_dir_all(&folder).expect("mode folder");
            one.save(&folder).expect("save");
        }
        whole
    }

    #[test]
    fn the_modes_manifests_make_the_comparisons() {
        let dir = tempfile::tempdir().expect("temp dir");
        let whole = study(dir.path(), |_| {});
        assert_eq!(merge(dir.path()).expect("merges"), whole);

        std::fs::remove_file(dir.path().join("raw/sync/runs.json")).expect("remove");
        let merged = merge(dir.path()).expect("one mode is a report too");
        assert_eq!(merged.settings.modes, ["async"]);
        assert!(merged.runs.iter().all(|r| r.mode == "async"));
    }

    #[test]
    fn another_scenario_or_other_settings_are_refused_with_what_differs() {
        let dir = tempfile::tempdir().expect("temp dir");
        study(dir.path(), |m| m.scenario = "sustained".into());
        let err = format!("{:#}", merge(dir.path()).expect_err("two scenarios"));
        assert!(
            err.contains("raw/async/runs.json is of scenario sustained")
                && err.contains("raw/sync/runs.json of flash"),
            "{err}"
        );

        let dir = tempfile::tempdir().expect("temp dir");
        study(dir.path(), |m| {
            m.settings.vus = vec![250];
            m.settings.replicas = 3;
        });
        let err = format!("{:#}", merge(dir.path()).expect_err("other settings"));
        assert!(
            err.contains("replicas: 2 vs 3") && err.contains("vus: [500] vs [250]"),
            "{err}"
        );

        let dir = tempfile::tempdir().expect("temp dir");
        study(dir.path(), |m| m.settings.modes = vec!["sync".into()]);
        let err = format!(
            "{:#}",
            merge(dir.path()).expect_err("a folder of another mode")
        );
        assert!(
            err.contains("raw/async/runs.json is not a manifest of mode async alone"),
            "{err}"
        );

        let empty = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(empty.path().join("raw")).expect("raw");
        let err = format!("{:#}", merge(empty.path()).expect_err("nothing to merge"));
        assert!(err.contains("flashsale study"), "{err}");
    }
}
