//! The CI examples under ci/ pass their schemas (scripts/validate-ci.sh: check-jsonschema's
//! vendored GitHub Actions and GitLab CI schemas, kubernetes-validate --strict), and broken
//! variants of them do not. The validators come from scripts/setup.sh: absent, a skip
//! outside CI and a failure under CI=true.

mod common;

use std::path::Path;
use std::process::Command;

/// Whether ./.venv has the validators; absent under CI=true: a failure.
fn validators() -> bool {
    let tool = common::crate_root().join(".venv/bin/check-jsonschema");
    if tool.exists() {
        return true;
    }
    assert!(
        !trtforge::env::in_ci(),
        "{} is missing; under CI scripts/setup.sh must have installed it",
        tool.display()
    );
    eprintln!("SKIP: {} not found (run scripts/setup.sh)", tool.display());
    false
}

/// `scripts/validate-ci.sh KIND FILE`: (success, stdout and stderr).
fn validate(kind: &str, file: &Path) -> (bool, String) {
    let out = Command::new("bash")
        .arg("scripts/validate-ci.sh")
        .arg(kind)
        .arg(file)
        .current_dir(common::crate_root())
        .output()
        .expect("run scripts/validate-ci.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn assert_valid(kind: &str, rel: &str) {
    if !validators() {
        return;
    }
    let (ok, text) = validate(kind, Path::new(rel));
    assert!(ok, "{rel} is not a valid {kind}:\n{text}");
    assert_eq!(text.trim(), format!("ok {rel}"));
}

#[test]
fn github_nightly_workflow_is_valid() {
    assert_valid("github-workflow", "ci/github/nightly.yml");
}

#[test]
fn gitlab_parent_pipeline_is_valid() {
    assert_valid("gitlab-ci", "ci/gitlab/.gitlab-ci.yml");
}

#[test]
fn gitlab_child_pipeline_example_is_valid() {
    assert_valid("gitlab-ci", "ci/gitlab/cells.example.yml");
}

#[test]
fn k8s_cells_example_is_valid() {
    assert_valid("k8s", "ci/k8s/nightly-cells.example.yaml");
}

/// Each committed example with one change that its schema forbids is rejected, with a line
/// naming the file.
#[test]
fn broken_variants_are_rejected() {
    if !validators() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broken = [
        // A job key GitHub does not know.
        (
            "github-workflow",
            "ci/github/nightly.yml",
            "  collect:\n",
            "  collect:\n    bogus-key: true\n",
        ),
        // artifacts:when has three values.
        (
            "gitlab-ci",
            "ci/gitlab/cells.example.yml",
            "    when: always\n",
            "    when: sometimes\n",
        ),
        // A needs entry naming a parent pipeline needs `job`.
        (
            "gitlab-ci",
            "ci/gitlab/cells.example.yml",
            "      job: prepare\n",
            "      jobs: prepare\n",
        ),
        // An unknown field (strict mode), then a kind with no schema (only a warning from
        // kubernetes-validate itself).
        (
            "k8s",
            "ci/k8s/nightly-cells.example.yaml",
            "  completionMode: Indexed\n",
            "  completionsMode: Indexed\n",
        ),
        (
            "k8s",
            "ci/k8s/nightly-cells.example.yaml",
            "kind: Job\n",
            "kind: Jobb\n",
        ),
        ("k8s", "ci/k8s/nightly-cells.example.yaml", "", ""),
    ];
    for (i, (kind, rel, from, to)) in broken.iter().enumerate() {
        let text = std::fs::read_to_string(common::crate_root().join(rel)).unwrap();
        let bad = if from.is_empty() {
            // No documents at all.
            String::new()
        } else {
            assert!(text.contains(from), "{rel} no longer has {from:?}");
            text.replacen(from, to, 1)
        };
        let name = Path::new(rel).file_name().unwrap().to_str().unwrap();
        let file = dir.path().join(format!("{i}-{name}"));
        std::fs::write(&file, bad).unwrap();
        let (ok, out) = validate(kind, &file);
        assert!(!ok, "{rel} with {to:?} passed:\n{out}");
        assert!(
            out.contains(&format!("FAIL {}", file.display())),
            "{rel} with {to:?}:\n{out}"
        );
    }
}
