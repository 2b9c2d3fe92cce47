//! The journey's pass/fail limits, as k6 itself reads the script's options (`k6 inspect`):
//! none unless THRESHOLD_* is set, so `compare` judges its runs by the report alone.

use crate::helpers::ensure_infra;
use std::collections::BTreeMap;

fn thresholds(env: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
    ensure_infra();
    let k6 = harness::k6::binary().expect("k6 (flashsale setup installs it)");
    let dir = tempfile::tempdir().expect("temp dir");
    let script = harness::k6::write_scripts(dir.path()).expect("scripts");
    let mut cmd = std::process::Command::new(k6);
    cmd.arg("inspect");
    for (k, v) in env {
        cmd.arg("-e").arg(format!("{k}={v}"));
    }
    let out = cmd.arg(&script).output().expect("k6 inspect");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let options: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    serde_json::from_value(options["thresholds"].clone()).expect("thresholds")
}

#[test]
fn the_journey_fails_a_run_only_on_the_limits_it_is_given() {
    let none = thresholds(&[]);
    for (metric, list) in &none {
        assert!(
            list.iter().all(|t| t.ends_with(">=0")),
            "{metric} has a limit that can fail: {list:?}"
        );
    }
    let set = thresholds(&[
        ("THRESHOLD_FAILURE_RATE", "0.01"),
        ("THRESHOLD_CHECKOUT_P95_MS", "1500"),
    ]);
    assert!(set["http_req_failed{phase:journey}"].contains(&"rate<0.01".to_string()));
    assert!(set["checkout_duration{outcome:confirmed}"].contains(&"p(95)<1500".to_string()));
    let empty = thresholds(&[("THRESHOLD_FAILURE_RATE", "")]);
    assert_eq!(
        empty, none,
        "an empty limit (compose's unset variable) is none"
    );
}
