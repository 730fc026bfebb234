//! The systemd units in deploy/systemd, exercised for real as far as a machine without systemd
//! allows (issue 9): each unit is parsed, its `ExecStart` command line is run with its
//! `Environment` (paths moved into a scratch directory: `/usr/local/bin/unione` is the binary
//! cargo built, `/etc/unione` and `/var/lib` live in the scratch directory), the server becomes
//! healthy by `unione health`, writes its database in the unit's state directory, and stops
//! cleanly on the unit's `KillSignal` (SIGTERM). With `systemd-analyze` installed, the units
//! pass `systemd-analyze verify` too.

mod common;
mod standalone;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A unit file's `[Service]` section: each key with every value it was given, in order.
fn service_section(unit: &str) -> BTreeMap<String, Vec<String>> {
    let mut section = String::new();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("a unit line is key=value: {line}"));
        if section == "[Service]" {
            out.entry(key.trim().to_owned())
                .or_default()
                .push(value.trim().to_owned());
        }
    }
    out
}

fn one<'a>(service: &'a BTreeMap<String, Vec<String>>, key: &str) -> &'a str {
    match service.get(key).map(Vec::as_slice) {
        Some([value]) => value,
        other => panic!("{key} given once in [Service], found {other:?}"),
    }
}

/// The unit's absolute paths, moved under `root` (the binary to the one under test).
fn relocate(value: &str, root: &Path) -> String {
    let binary = env!("CARGO_BIN_EXE_unione");
    let value = value.replace("/usr/local/bin/unione", binary);
    ["/etc/unione", "/var/lib"].iter().fold(value, |v, dir| {
        v.replace(dir, &format!("{}{dir}", root.display()))
    })
}

struct Started {
    proc: Proc,
    config: PathBuf,
    state_dir: PathBuf,
}

/// Starts the unit's ExecStart with its environment, the state directory created as systemd
/// would (StateDirectory under /var/lib, StateDirectoryMode).
fn start_unit(unit_file: &str, root: &Path, logs: &Path) -> Started {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(unit_file))
        .expect("the unit file");
    let service = service_section(&text);
    assert_eq!(one(&service, "Type"), "simple");
    assert_eq!(
        one(&service, "KillSignal"),
        "SIGTERM",
        "SIGTERM drains calls"
    );
    assert_eq!(one(&service, "NoNewPrivileges"), "yes");
    assert_eq!(one(&service, "ProtectSystem"), "strict");

    let state_dir = root.join("var/lib").join(one(&service, "StateDirectory"));
    std::fs::create_dir_all(&state_dir).expect("state directory");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = u32::from_str_radix(one(&service, "StateDirectoryMode"), 8).expect("octal");
        std::fs::set_permissions(&state_dir, std::fs::Permissions::from_mode(mode)).expect("mode");
    }

    let exec = relocate(one(&service, "ExecStart"), root);
    let argv: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(
        argv[0],
        env!("CARGO_BIN_EXE_unione"),
        "the unit runs the unione binary"
    );
    let config = argv
        .windows(2)
        .find(|w| w[0] == "--config")
        .map(|w| PathBuf::from(w[1]))
        .expect("ExecStart names a --config file");
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]);
    for assignment in service.get("Environment").into_iter().flatten() {
        let (key, value) = assignment.split_once('=').expect("Environment=KEY=VALUE");
        cmd.env(key, relocate(value, root));
    }
    let name = Path::new(unit_file)
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("a unit name")
        .to_owned();
    Started {
        proc: Proc::spawn(&name, cmd, logs),
        config,
        state_dir,
    }
}

fn run_unit(unit_file: &str, kind: &str, database: &str, listen: &str, logs: &Path, root: &Path) {
    let etc = root.join("etc/unione");
    let setup = standalone::setup(&etc);
    // The configuration names no data directory: the unit's Environment gives it.
    let toml = match kind {
        "node" => setup.node_toml(listen, None),
        _ => setup.gateway_toml(listen),
    };
    std::fs::write(etc.join(format!("{kind}.toml")), toml).expect("config");
    let mut started = start_unit(unit_file, root, logs);
    assert_eq!(started.config, etc.join(format!("{kind}.toml")));
    standalone::wait_healthy(kind, &started.config, &mut started.proc, logs);
    assert!(
        started.state_dir.join(database).exists(),
        "{unit_file}: the database is in the state directory"
    );
    let status = started.proc.terminate();
    assert!(
        status.success(),
        "{unit_file} stops cleanly on SIGTERM: {status}"
    );
}

#[test]
fn the_node_unit_starts_a_healthy_node_that_stops_on_sigterm() {
    let (_guard, dir) = scratch("systemd-node");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).expect("log dir");
    run_unit(
        "deploy/systemd/unione-node.service",
        "node",
        "node.sqlite",
        "127.0.0.53:7401",
        &logs,
        &dir,
    );
}

#[test]
fn the_gateway_unit_starts_a_healthy_gateway_that_stops_on_sigterm() {
    let (_guard, dir) = scratch("systemd-gateway");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).expect("log dir");
    run_unit(
        "deploy/systemd/unione-gateway.service",
        "gateway",
        "gateway.sqlite",
        "127.0.0.53:7443",
        &logs,
        &dir,
    );
}

#[test]
fn the_units_pass_systemd_analyze_verify_where_it_is_installed() {
    let Ok(found) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze is not installed: the units were not verified by it");
        return;
    };
    assert!(found.status.success());
    let (_guard, dir) = scratch("systemd-verify");
    for unit in ["unione-node.service", "unione-gateway.service"] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("deploy/systemd")
                .join(unit),
        )
        .expect("unit");
        // The binary is where the test built it; everything else as written.
        let copy = dir.join(unit);
        std::fs::write(
            &copy,
            text.replace("/usr/local/bin/unione", env!("CARGO_BIN_EXE_unione")),
        )
        .expect("copy");
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&copy)
            .output()
            .expect("systemd-analyze runs");
        assert!(
            out.status.success(),
            "{unit}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
