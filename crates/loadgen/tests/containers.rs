//! The image and the compose topology for real, where this machine runs a container engine:
//! build `deploy/Dockerfile`, run three node containers and a generator container with
//! `deploy/compose/compose.yaml`, and read the generator's summary. Where no engine runs (no
//! Docker daemon, no podman), or the base images cannot be had, the test says so and skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{repo, text};

use std::process::{Command, Output};

/// `docker` or `podman` with a running engine and compose, or why not.
fn engine() -> Result<&'static str, String> {
    let mut why = Vec::new();
    for engine in ["docker", "podman"] {
        match Command::new(engine).arg("info").output() {
            Err(e) => why.push(format!("{engine}: {e}")),
            Ok(out) if !out.status.success() => {
                let said = text(&out);
                why.push(format!(
                    "{engine}: {}",
                    said.lines().last().unwrap_or("no engine")
                ));
            }
            Ok(_) => match Command::new(engine).args(["compose", "version"]).output() {
                Ok(out) if out.status.success() => return Ok(engine),
                _ => why.push(format!("{engine}: no `{engine} compose`")),
            },
        }
    }
    Err(why.join("; "))
}

fn run(engine: &str, args: &[&str]) -> Output {
    Command::new(engine)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

#[test]
fn the_image_runs_three_nodes_and_a_generator() {
    let engine = match engine() {
        Ok(engine) => engine,
        Err(why) => {
            eprintln!("skipped: no container engine runs here ({why})");
            return;
        }
    };
    let build = run(
        engine,
        &[
            "build",
            "-f",
            "deploy/Dockerfile",
            "-t",
            "paxbench:0.1.0",
            ".",
        ],
    );
    if !build.status.success() {
        let said = text(&build);
        // A machine without a registry has no base images; that is not this project's failure.
        if said.contains("pull") || said.contains("manifest unknown") || said.contains("resolve") {
            eprintln!(
                "skipped: the base images (rust:1.88-slim-bookworm, debian:bookworm-slim) \
                 cannot be pulled here; build them and pass --build-arg BUILDER=… BASE=…: {}",
                said.lines().last().unwrap_or_default()
            );
            return;
        }
        panic!("the image did not build:\n{said}");
    }
    let compose = [
        "compose",
        "-p",
        "paxbench-test",
        "-f",
        "deploy/compose/compose.yaml",
    ];
    let up = run(
        engine,
        &[
            &compose[..],
            &[
                "up",
                "--abort-on-container-exit",
                "--exit-code-from",
                "generator",
                "generator",
            ],
        ]
        .concat(),
    );
    let copied = tempfile::tempdir().unwrap();
    let copy = run(
        engine,
        &[
            &compose[..],
            &[
                "cp",
                "generator:/var/lib/paxbench/results/run",
                copied.path().to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    let down = run(engine, &[&compose[..], &["down", "-v"]].concat());
    assert!(up.status.success(), "{}", text(&up));
    assert!(copy.status.success(), "{}", text(&copy));
    assert!(down.status.success(), "{}", text(&down));
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(copied.path().join("run/summary.json")).unwrap(),
    )
    .unwrap();
    let scenario = &summary["scenarios"][0];
    assert!(
        scenario["outcomes"]["won"].as_u64().unwrap() > 0,
        "{scenario:#}"
    );
    assert_eq!(scenario["safety"]["violations"], 0);
    assert_eq!(
        scenario["shared"]["clock_offsets"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}
