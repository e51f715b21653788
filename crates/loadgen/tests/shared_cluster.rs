//! Runs against a long-lived cluster, as across hosts: attach runs one after another (a node
//! restarted between them) and with reused keys, two generators started together and merged,
//! and refused handshakes reported at once with the file to fix. One durable local cluster,
//! on loopback, serves every case.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{PAXBENCH, paxbench, text};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use paxbench_loadgen::report::files::parse_utc;
use paxbench_loadgen::report::utc_stamp;
use paxbench_node::{LocalCluster, LocalClusterSpec, NodeSettings, StorageMode};
use serde_json::Value;

/// An attach config for `cluster`; `{client}` in the certificate paths, `extra` appended to
/// the attach section, `measure` as the measure section.
fn config(dir: &Path, name: &str, cluster: &LocalCluster, extra: &str, measure: &str) -> PathBuf {
    let certs = cluster.certs();
    let nodes: Vec<String> = cluster
        .nodes()
        .iter()
        .map(|n| format!("{{id: {}, addr: {}}}", n.id, n.addr))
        .collect();
    let text = format!(
        "name: {name}\ntarget:\n  kind: attach\n  attach:\n    nodes: [{}]\n    ca: {}\n    cert: {}\n    key: {}\n{extra}workload:\n  proposers: 8\n  keys: 200\n  warmup_s: 0.3\n  duration_s: 1\nproposer:\n  id_scheme: counter\nmeasure:\n  pings: 20\n{measure}",
        nodes.join(", "),
        certs.join("ca.pem").display(),
        certs.join("client-{client}.pem").display(),
        certs.join("client-{client}.key").display(),
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn run(config: &Path, out: &Path, args: &[&str]) -> Value {
    let mut all = vec![
        "run",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-progress",
        "--no-charts",
    ];
    all.extend_from_slice(args);
    let output = paxbench(&all);
    assert!(output.status.success(), "{}", text(&output));
    summary(out)
}

fn start_cluster() -> LocalCluster {
    LocalCluster::start(LocalClusterSpec {
        nodes: 3,
        extra_node_certs: 0,
        clients: 3,
        shared: NodeSettings {
            storage: Some(StorageMode::Wal),
            ..NodeSettings::default()
        },
        program: PAXBENCH.into(),
        program_args: vec!["node".into(), "run".into()],
        log_filter: "warn".into(),
    })
    .unwrap()
}

#[test]
fn runs_share_a_long_lived_cluster_without_false_violations() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start_cluster();
    let fresh = config(dir.path(), "fresh", &cluster, "", "");

    // Two runs one after another, a node killed and restarted between them, other clients.
    let first = run(&fresh, &dir.path().join("first"), &["--client", "0"]);
    cluster.kill(2);
    cluster.start_node(2, &[]).unwrap();
    let second = run(&fresh, &dir.path().join("second"), &["--client", "1"]);
    for s in [&first, &second] {
        let scenario = &s["scenarios"][0];
        assert_eq!(scenario["safety"]["violations"], 0, "{scenario:#}");
        assert!(scenario["outcomes"]["won"].as_u64().unwrap() > 0);
        assert_eq!(scenario["shared"]["preexisting"], 0);
        assert_eq!(
            scenario["shared"]["clock_offsets"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
    }
    let namespace = |s: &Value| s["scenarios"][0]["settings"]["run"]["namespace"].clone();
    assert_ne!(namespace(&first), namespace(&second));

    // Reused keys: the second run learns what the first chose, as pre-existing values.
    let reuse = config(dir.path(), "reuse", &cluster, "    keys: reuse\n", "");
    run(&reuse, &dir.path().join("reuse-1"), &[]);
    let again = run(&reuse, &dir.path().join("reuse-2"), &["--client", "2"]);
    let scenario = &again["scenarios"][0];
    assert_eq!(scenario["settings"]["run"]["namespace"], 0);
    assert_eq!(scenario["safety"]["violations"], 0, "{scenario:#}");
    assert!(
        scenario["shared"]["preexisting"].as_u64().unwrap() > 0,
        "{scenario:#}"
    );
    assert!(scenario["outcomes"]["lost_race"].as_u64().unwrap() > 0);

    // Two generators with one start and shared keys, then merged.
    let together = config(
        dir.path(),
        "together",
        &cluster,
        "    keys: shared\n",
        "  evidence: true\n",
    );
    let start = utc_stamp(SystemTime::now() + Duration::from_secs(4), false);
    let generators: Vec<_> = (0..2)
        .map(|client| {
            let out = dir.path().join(format!("gen-{client}"));
            let child = Command::new(PAXBENCH)
                .args([
                    "run",
                    together.to_str().unwrap(),
                    "--client",
                    &client.to_string(),
                    "--start-at",
                    &start,
                    "--out",
                    out.to_str().unwrap(),
                    "--no-progress",
                    "--no-charts",
                ])
                .spawn()
                .unwrap();
            (child, out)
        })
        .collect();
    let mut parts = Vec::new();
    for (mut child, out) in generators {
        assert!(child.wait().unwrap().success());
        parts.push(summary(&out));
    }
    let merged_dir = dir.path().join("merged");
    let output = paxbench(&[
        "merge",
        dir.path().join("gen-0").to_str().unwrap(),
        dir.path().join("gen-1").to_str().unwrap(),
        "--out",
        merged_dir.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("cross-generator check"),
        "{}",
        text(&output)
    );
    let merged = summary(&merged_dir);
    let scenario = &merged["scenarios"][0];
    let won = |s: &Value| s["scenarios"][0]["outcomes"]["won"].as_u64().unwrap();
    assert_eq!(won(&merged), won(&parts[0]) + won(&parts[1]));
    let run = |s: &Value| s["scenarios"][0]["settings"]["run"].clone();
    assert_eq!(
        run(&parts[0]),
        run(&parts[1]),
        "one start: one tag and namespace"
    );
    let shared = &scenario["shared"];
    // Each generator was scheduled at the given instant and began its warmup once it had
    // passed, never before (how soon after is a figure for docs/performance.md, not a test).
    let instant = parse_utc(&start)
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    for part in &parts {
        let scenario = &part["scenarios"][0];
        assert_eq!(scenario["settings"]["run"]["start_unix_ns"], instant);
        let late = scenario["shared"]["start_late_ms"].as_f64().unwrap();
        assert!(late >= 0.0, "{late}");
    }
    assert!(shared["window_spread_ms"].as_f64().unwrap() >= 0.0);
    let check = &shared["cross_check"];
    assert_eq!(check["generators"], 2);
    assert_eq!(check["violations"], 0, "{check:#}");
    assert!(check["shared_instances"].as_u64().unwrap() > 0, "{check:#}");
    assert_eq!(scenario["safety"]["violations"], 0);
    cluster.stop();
}

#[test]
fn refused_handshakes_fail_at_once_and_name_the_file_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start_cluster();
    // Certificates of another CA.
    let other = dir.path().join("other");
    paxbench_quic::generate_cluster_certs(&other, &paxbench_quic::CertPlan::new(3, 1)).unwrap();
    let good = config(dir.path(), "good", &cluster, "", "");
    let good_text = std::fs::read_to_string(&good).unwrap();
    let certs = cluster.certs().display().to_string();
    let addr = |i: usize| cluster.nodes()[i].addr.to_string();
    let cases = [
        (
            "client",
            good_text.replace(
                &format!("{certs}/client-{{client}}"),
                &format!("{}/client-{{client}}", other.display()),
            ),
            "refused this generator's client certificate",
            format!("{}/client-0.pem", other.display()),
        ),
        (
            "ca",
            good_text.replace(
                &format!("{certs}/ca.pem"),
                &format!("{}/ca.pem", other.display()),
            ),
            "not signed by the CA in",
            format!("{}/ca.pem", other.display()),
        ),
        (
            "name",
            good_text
                .replace(&addr(0), "FIRST")
                .replace(&addr(1), &addr(0))
                .replace("FIRST", &addr(1)),
            "is not node 1",
            "target.attach.nodes".to_string(),
        ),
    ];
    for (name, text_of_config, says, names) in cases {
        assert_ne!(
            text_of_config, good_text,
            "{name}: the case changes the config"
        );
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text_of_config).unwrap();
        let out = dir.path().join(format!("out-{name}"));
        let output = paxbench(&[
            "run",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--no-progress",
        ]);
        let message = text(&output);
        assert_eq!(output.status.code(), Some(1), "{name}: {message}");
        assert!(message.contains(says), "{name}: {message}");
        assert!(message.contains(&names), "{name}: {message}");
        assert!(!message.contains("did not answer"), "{name}: {message}");
        assert!(
            !out.exists(),
            "{name}: a failed run leaves no complete-looking folder"
        );
    }
    cluster.stop();
}
