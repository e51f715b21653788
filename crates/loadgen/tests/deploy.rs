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

/// Runs the own-key init script as `hostname` would, copying `members` from `from` to `to`.
fn own_key(script: &Path, hostname: &str, from: &Path, to: &Path, members: &[&str]) -> Output {
    Command::new("sh")
        .arg(script)
        .arg(from)
        .arg(to)
        .args(members)
        .env("HOSTNAME", hostname)
        .output()
        .unwrap()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn each_pod_gets_only_its_own_key_out_of_the_shared_secret() {
    use std::os::unix::fs::PermissionsExt;
    let kube = repo().join("deploy/kubernetes");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("own-key.sh");
    std::fs::write(
        &script,
        config_map_entry(&kube.join("own-key.yaml"), "own-key.sh"),
    )
    .unwrap();
    let secret = dir.path().join("secret");
    std::fs::create_dir(&secret).unwrap();
    for member in [
        "node-1", "node-2", "node-3", "client-0", "client-1", "admin-0",
    ] {
        std::fs::write(secret.join(format!("{member}.pem")), member).unwrap();
        std::fs::write(secret.join(format!("{member}.key")), member).unwrap();
    }
    std::fs::write(secret.join("ca.pem"), "ca").unwrap();

    // The second StatefulSet pod is node 2; it gets the CA and node 2's pair, nothing else.
    let node = dir.path().join("node");
    std::fs::create_dir(&node).unwrap();
    let out = own_key(&script, "paxbench-node-1", &secret, &node, &["node"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(names_in(&node), ["ca.pem", "node-2.key", "node-2.pem"]);
    let mode = std::fs::metadata(node.join("node-2.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o400);
    assert_eq!(
        std::fs::read_to_string(node.join("node-2.key")).unwrap(),
        "node-2"
    );

    let generator = dir.path().join("generator");
    std::fs::create_dir(&generator).unwrap();
    let out = own_key(
        &script,
        "gen-x",
        &secret,
        &generator,
        &["client-1", "admin-0"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        names_in(&generator),
        [
            "admin-0.key",
            "admin-0.pem",
            "ca.pem",
            "client-1.key",
            "client-1.pem"
        ]
    );

    // A member the Secret lacks, or a name that is no member's, copies nothing and says why.
    for (hostname, members, expected) in [
        (
            "paxbench-node-8",
            &["node"][..],
            "node-9.pem is not in the Secret",
        ),
        ("paxbench-node-0", &["../ca"][..], "not a member name"),
        ("laptop", &["node"][..], "does not end in -N"),
    ] {
        let empty = dir.path().join(format!("empty-{hostname}"));
        std::fs::create_dir(&empty).unwrap();
        let out = own_key(&script, hostname, &secret, &empty, members);
        assert!(!out.status.success());
        assert!(text(&out).contains(expected), "{}", text(&out));
        assert!(names_in(&empty).is_empty(), "{:?}", names_in(&empty));
    }

    // Where paxbench runs, no container mounts the Secret: only the init containers do.
    for manifest in ["nodes.yaml", "generators.yaml"] {
        let text = std::fs::read_to_string(kube.join(manifest)).unwrap();
        for doc in text.split("\n---\n") {
            let doc: Value = serde_saphyr::from_str(doc).unwrap();
            let spec = &doc["spec"]["template"]["spec"];
            if spec.is_null() {
                continue;
            }
            let secret_volumes: Vec<&str> = spec["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|v| !v["secret"].is_null())
                .map(|v| v["name"].as_str().unwrap())
                .collect();
            assert_eq!(secret_volumes, ["all-certs"], "{manifest}");
            for container in spec["containers"].as_array().unwrap() {
                for mount in container["volumeMounts"].as_array().unwrap() {
                    assert_ne!(mount["name"], "all-certs", "{manifest}: {container}");
                }
            }
            let init = &spec["initContainers"][0];
            assert_eq!(init["name"], "own-key", "{manifest}");
            assert_eq!(init["command"][1], "/etc/paxbench/own-key.sh", "{manifest}");
        }
    }
}
