//! The deployment files (`deploy/`): the Kubernetes manifests and the compose file validate
//! against their schemas (scripts/check-deploy.sh, which CI installs), a broken copy is
//! refused, and the bench and node configs inside them pass paxbench's own checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{PAXBENCH, repo, text};

use std::path::Path;
use std::process::{Command, Output};

use paxbench_node::NodeSettings;
use serde_json::Value;

fn check_deploy(dir: Option<&Path>) -> Output {
    let mut command = Command::new("bash");
    command.arg(repo().join("scripts/check-deploy.sh"));
    if let Some(dir) = dir {
        command.arg(dir);
    }
    command.output().unwrap()
}

/// The `data` entry `key` of the ConfigMap in `manifest`.
fn config_map_entry(manifest: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(manifest).unwrap();
    let doc: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(doc["kind"], "ConfigMap", "{}", manifest.display());
    doc["data"][key].as_str().unwrap().to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn manifests_and_compose_file_validate_and_a_broken_one_is_refused() {
    let output = check_deploy(None);
    if output.status.code() == Some(2) {
        eprintln!("{}", text(&output).trim());
        return;
    }
    assert!(output.status.success(), "{}", text(&output));
    let said = text(&output);
    assert!(said.contains("manifests valid"), "{said}");
    assert!(said.contains("compose"), "{said}");

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("deploy");
    copy_dir(&repo().join("deploy"), &broken);
    let nodes = broken.join("kubernetes/nodes.yaml");
    let manifest = std::fs::read_to_string(&nodes).unwrap();
    std::fs::write(
        &nodes,
        manifest.replace("  podManagementPolicy:", "  podManagmentPolicy:"),
    )
    .unwrap();
    let output = check_deploy(Some(&broken));
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("podManagmentPolicy"),
        "{}",
        text(&output)
    );

    copy_dir(&repo().join("deploy"), &broken);
    let compose = broken.join("compose/compose.yaml");
    let file = std::fs::read_to_string(&compose).unwrap();
    std::fs::write(&compose, file.replace("    depends_on:", "    depend_on:")).unwrap();
    let output = check_deploy(Some(&broken));
    assert!(!output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("depend_on"), "{}", text(&output));
}

#[test]
fn the_configs_inside_the_deployments_pass_paxbench_validate() {
    let dir = tempfile::tempdir().unwrap();
    let kubernetes = repo().join("deploy/kubernetes");
    let bench = dir.path().join("kubernetes-bench.yaml");
    std::fs::write(
        &bench,
        config_map_entry(&kubernetes.join("bench-config.yaml"), "bench.yaml"),
    )
    .unwrap();
    let compose_bench = repo().join("deploy/compose/bench.yaml");
    for config in [&bench, &compose_bench] {
        let output = Command::new(PAXBENCH)
            .args(["validate", config.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
    }

    let node = dir.path().join("kubernetes-node.yaml");
    std::fs::write(
        &node,
        config_map_entry(&kubernetes.join("node-config.yaml"), "node.yaml"),
    )
    .unwrap();
    for file in [node, repo().join("deploy/compose/node.yaml")] {
        for id in 1..=3u32 {
            let settings = NodeSettings {
                id: Some(id),
                ..NodeSettings::from_file(&file).unwrap()
            };
            let config = settings.resolve(&file.display().to_string()).unwrap();
            assert_eq!(config.peers.len(), 2, "{}: the others", file.display());
            assert!(config.peers.iter().all(|p| p.id != id));
            let tls = config.tls.unwrap();
            assert!(
                tls.cert.ends_with(format!("node-{id}.pem")),
                "{}",
                tls.cert.display()
            );
        }
    }
}

#[test]
fn every_deployment_runs_the_image_of_this_version_never_latest() {
    let tag = format!("paxbench:{}", env!("CARGO_PKG_VERSION"));
    let mut files = vec![repo().join("deploy/compose/compose.yaml")];
    for entry in std::fs::read_dir(repo().join("deploy/kubernetes")).unwrap() {
        files.push(entry.unwrap().path());
    }
    let mut images = 0;
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
    {
        let text = std::fs::read_to_string(file).unwrap();
        for line in text
            .lines()
            .filter(|l| l.trim_start().starts_with("image:"))
        {
            images += 1;
            assert!(
                line.contains(&tag),
                "{}: {line} (expected {tag})",
                file.display()
            );
        }
    }
    assert!(images >= 5, "{images} images found");
}
