//! Checks of `deploy/` without a container engine: every YAML file parses; the compose file's
//! servers load their configuration files into the real configuration types (with the
//! environment compose gives them) and pass validation; the gateway's directories load as the
//! gateway loads them; the compose init step runs with the real binary and writes every file
//! the servers name; the Kubernetes manifests carry what matters (non-root, resources,
//! probes, read-only Secrets, NetworkPolicies) and, when `kubectl` is installed, render with
//! `kubectl kustomize` into objects that reference each other correctly; the Dockerfile and
//! the systemd units are hardened; every `UNIONE_*` variable named in `deploy/` is a
//! configuration key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use unione_gateway::GatewayConfig;
use unione_gateway::directory::{Directory, DirectoryFile};
use unione_kit::config::{Validate, load_from};
use unione_node::NodeConfig;
use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlLoader};

// ---------------------------------------------------------------------------------------------
// Helpers

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy() -> PathBuf {
    root().join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every file under `dir`, recursively, sorted.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn has_ext(path: &Path, exts: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.contains(&e))
}

/// Resolves YAML merge keys (`<<: *anchor`), which compose files use; yaml_rust2 resolves
/// the aliases but leaves `<<` as an ordinary key. Keys written in the mapping win.
fn resolve_merges(y: Yaml) -> Yaml {
    match y {
        Yaml::Hash(h) => {
            let merge_key = Yaml::String("<<".to_owned());
            let mut out = Hash::new();
            let mut merged = Vec::new();
            for (k, v) in h {
                let v = resolve_merges(v);
                if k == merge_key {
                    match v {
                        Yaml::Array(items) => merged.extend(items),
                        other => merged.push(other),
                    }
                } else {
                    out.insert(k, v);
                }
            }
            for m in merged {
                let Yaml::Hash(m) = m else {
                    panic!("a merge key must name a mapping")
                };
                for (k, v) in m {
                    if !out.contains_key(&k) {
                        out.insert(k, v);
                    }
                }
            }
            Yaml::Hash(out)
        }
        Yaml::Array(items) => Yaml::Array(items.into_iter().map(resolve_merges).collect()),
        other => other,
    }
}

fn parse_yaml(text: &str, what: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(text)
        .unwrap_or_else(|e| panic!("{what} is not valid YAML: {e}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .map(resolve_merges)
        .collect()
}

/// The documents of a YAML file (empty ones left out), merge keys resolved.
fn yaml_file(path: &Path) -> Vec<Yaml> {
    parse_yaml(&read(path), &path.display().to_string())
}

fn get<'a>(y: &'a Yaml, path: &[&str]) -> &'a Yaml {
    path.iter().fold(y, |y, k| &y[*k])
}

fn list(y: &Yaml) -> &[Yaml] {
    y.as_vec().map(Vec::as_slice).unwrap_or(&[])
}

/// A scalar as text (strings, integers, booleans, reals).
fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn text(y: &Yaml, path: &[&str]) -> String {
    scalar(get(y, path)).unwrap_or_default()
}

fn strings(y: &Yaml) -> Vec<String> {
    list(y).iter().filter_map(scalar).collect()
}

/// A mapping of scalars as (key, value) pairs.
fn scalar_map(y: &Yaml) -> BTreeMap<String, String> {
    y.as_hash()
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((scalar(k)?, scalar(v)?)))
                .collect()
        })
        .unwrap_or_default()
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("`{addr}` has no port"))
}

/// The (comune, function) pairs a node configuration serves.
fn served(config: &NodeConfig) -> BTreeSet<(String, String)> {
    config
        .comuni
        .iter()
        .flat_map(|c| {
            c.functions
                .iter()
                .map(|f| (c.profile.istat.to_string(), f.as_str().to_owned()))
        })
        .collect()
}

/// The (comune, function) pairs the directory gives to `node`.
fn provided(directory: &Directory, node: &str) -> BTreeSet<(String, String)> {
    directory
        .provisions
        .iter()
        .filter(|p| p.node == node)
        .map(|p| (p.comune.clone(), p.function.as_str().to_owned()))
        .collect()
}

/// The host and port of an `https://host:port` endpoint.
fn endpoint_host_port(endpoint: &str) -> (String, u16) {
    let rest = endpoint
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("{endpoint} is not https://"));
    let (host, port) = rest.rsplit_once(':').expect("host:port");
    (host.to_owned(), port.parse().expect("a port"))
}

/// Loads and validates a directory file as the gateway does, and checks that every provision
/// names a member and a node (the gateway's validation refuses it otherwise; this says so in
/// the test too).
fn load_directory(path: &Path) -> Directory {
    let directory = DirectoryFile::load(path)
        .unwrap_or_else(|e| panic!("{}: the gateway refuses it: {e}", path.display()));
    let members: BTreeSet<&str> = directory.members.iter().map(|m| m.istat.as_str()).collect();
    let nodes: BTreeSet<&str> = directory.nodes.iter().map(|n| n.node_id.as_str()).collect();
    for p in &directory.provisions {
        assert!(
            members.contains(p.comune.as_str()),
            "{}: provision for {} names no member",
            path.display(),
            p.comune
        );
        assert!(
            nodes.contains(p.node.as_str()),
            "{}: provision names node {}, not in [[nodes]]",
            path.display(),
            p.node
        );
    }
    directory
}

fn is_node_config(table: &toml::Table) -> bool {
    table.contains_key("node_id")
}

fn is_gateway_config(table: &toml::Table) -> bool {
    table.contains_key("gateway_id")
}

fn toml_table(path: &Path) -> toml::Table {
    toml::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: not TOML: {e}", path.display()))
}

/// A placeholder for a value Kubernetes takes from a Secret.
fn secret_placeholder(name: &str) -> String {
    if name.ends_with("DATABASE_URL") {
        "postgres://unione@db.invalid:5432/unione".to_owned()
    } else {
        "from-a-secret".to_owned()
    }
}

/// The fiscal code check digit (the payments service's own function) of every comune named.
fn assert_fiscal_code(fiscal_code: &str, what: &str) {
    let check = unione_payments::domain::fiscal::numeric_check_digit(&fiscal_code[..10])
        .unwrap_or_else(|| panic!("{what}: fiscal code {fiscal_code} is not 11 digits"));
    assert_eq!(
        fiscal_code[10..],
        check.to_string(),
        "{what}: fiscal code {fiscal_code} has a wrong check digit"
    );
}

// ---------------------------------------------------------------------------------------------
// Every file

#[test]
fn every_yaml_file_parses() {
    let files: Vec<PathBuf> = walk(&deploy())
        .into_iter()
        .filter(|p| has_ext(p, &["yaml", "yml"]))
        .collect();
    assert!(
        files.len() >= 10,
        "compose, collector, Prometheus and kustomize files"
    );
    for path in files {
        let docs = yaml_file(&path);
        assert!(!docs.is_empty(), "{} is empty", path.display());
        for doc in docs {
            assert!(
                doc.is_hash(),
                "{}: every document is a mapping",
                path.display()
            );
        }
    }
}

#[test]
fn every_toml_file_loads_into_the_real_configuration_types() {
    let mut counts = (0, 0, 0);
    for path in walk(&deploy())
        .into_iter()
        .filter(|p| has_ext(p, &["toml"]))
    {
        let table = toml_table(&path);
        if is_node_config(&table) {
            let config: NodeConfig = load_from(Some(&path), Vec::new()).unwrap_or_else(|e| {
                panic!("{}: not a valid node configuration: {e:#}", path.display())
            });
            for key in ["node_id", "listen", "tls", "comuni"] {
                assert!(table.contains_key(key), "{}: no {key}", path.display());
            }
            for key in ["ca", "cert", "key"] {
                assert!(
                    table["tls"].get(key).is_some(),
                    "{}: no tls.{key}",
                    path.display()
                );
            }
            for c in &config.comuni {
                assert!(!c.functions.is_empty());
                assert_fiscal_code(&c.profile.fiscal_code, &path.display().to_string());
            }
            counts.0 += 1;
        } else if is_gateway_config(&table) {
            let _: GatewayConfig = load_from(Some(&path), Vec::new()).unwrap_or_else(|e| {
                panic!(
                    "{}: not a valid gateway configuration: {e:#}",
                    path.display()
                )
            });
            for key in [
                "gateway_id",
                "listen",
                "directory_file",
                "token_keys_dir",
                "tls",
            ] {
                assert!(table.contains_key(key), "{}: no {key}", path.display());
            }
            counts.1 += 1;
        } else {
            let directory = load_directory(&path);
            for m in &directory.members {
                assert_fiscal_code(&m.fiscal_code, &path.display().to_string());
            }
            counts.2 += 1;
        }
    }
    assert!(counts.0 >= 6, "node configurations: {counts:?}");
    assert!(counts.1 >= 2, "gateway configurations: {counts:?}");
    assert!(counts.2 >= 3, "directories: {counts:?}");
}

/// Every `UNIONE_*` variable named anywhere in `deploy/` is a configuration key of a node or
/// a gateway (or one of the variables the binary reads besides: the log filter, the file).
#[test]
fn every_unione_variable_named_in_deploy_is_a_configuration_key() {
    let node = toml::Value::try_from(NodeConfig::default()).expect("defaults serialize");
    let gateway = toml::Value::try_from(GatewayConfig::default()).expect("defaults serialize");
    let known = |path: &[String]| {
        [&node, &gateway].iter().any(|root| {
            path.iter()
                .try_fold(*root, |v, k| v.get(k.as_str()))
                .is_some()
        })
    };
    let mut seen = BTreeSet::new();
    for file in walk(&deploy()) {
        let content = read(&file);
        let mut rest = content.as_str();
        while let Some(at) = rest.find("UNIONE_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            let name = &tail[..end];
            rest = &tail[end..];
            let key = name.trim_start_matches("UNIONE_");
            if key.is_empty() || key.ends_with('_') || ["LOG", "CONFIG"].contains(&key) {
                continue;
            }
            let path: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
            assert!(
                known(&path),
                "{}: {name} is not a configuration key",
                file.display()
            );
            seen.insert(name.to_owned());
        }
    }
    assert!(seen.contains("UNIONE_DATABASE_URL"), "{seen:?}");
}

// ---------------------------------------------------------------------------------------------
// Compose

struct Compose {
    doc: Yaml,
}

impl Compose {
    fn load() -> Self {
        let mut docs = yaml_file(&deploy().join("compose.yaml"));
        assert_eq!(docs.len(), 1, "compose.yaml is one document");
        Self {
            doc: docs.remove(0),
        }
    }

    fn services(&self) -> Vec<(String, &Yaml)> {
        self.doc["services"]
            .as_hash()
            .expect("services")
            .iter()
            .map(|(k, v)| (scalar(k).expect("a service name"), v))
            .collect()
    }

    fn service(&self, name: &str) -> &Yaml {
        let s = &self.doc["services"][name];
        assert!(s.is_hash(), "compose has no service {name}");
        s
    }

    /// The services that run `unione node` or `unione gateway`, with the subcommand.
    fn servers(&self) -> Vec<(String, String, &Yaml)> {
        self.services()
            .into_iter()
            .filter_map(|(name, s)| {
                let command = strings(&s["command"]);
                let sub = command.first()?.clone();
                ["node", "gateway"]
                    .contains(&sub.as_str())
                    .then_some((name, sub, s))
            })
            .collect()
    }
}

/// A compose volume entry `source:target[:mode]`.
struct Mount {
    source: String,
    target: String,
    read_only: bool,
}

impl Mount {
    fn is_bind(&self) -> bool {
        self.source.starts_with("./") || self.source.starts_with("../")
    }
}

fn mounts(service: &Yaml) -> Vec<Mount> {
    strings(&service["volumes"])
        .iter()
        .map(|v| {
            let parts: Vec<&str> = v.split(':').collect();
            assert!(parts.len() >= 2, "short volume syntax expected: {v}");
            Mount {
                source: parts[0].to_owned(),
                target: parts[1].to_owned(),
                read_only: parts.get(2) == Some(&"ro"),
            }
        })
        .collect()
}

fn environment(service: &Yaml) -> BTreeMap<String, String> {
    match &service["environment"] {
        Yaml::Array(items) => items
            .iter()
            .filter_map(scalar)
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_owned(), v.to_owned()))
            })
            .collect(),
        other => scalar_map(other),
    }
}

fn config_arg(command: &[String]) -> String {
    let at = command
        .iter()
        .position(|a| a == "--config")
        .expect("the command names --config");
    command[at + 1].clone()
}

/// The file on this machine that a compose service mounts at `target`.
fn bind_source(service: &Yaml, target: &str) -> PathBuf {
    let mount = mounts(service)
        .into_iter()
        .find(|m| m.target == target)
        .unwrap_or_else(|| panic!("nothing is mounted at {target}"));
    assert!(
        mount.is_bind(),
        "{target} is mounted from a file of deploy/"
    );
    assert!(mount.read_only, "{target} is mounted read-only");
    let path = deploy().join(&mount.source);
    assert!(path.is_file(), "{} does not exist", path.display());
    path
}

/// The named volume and the path inside it where a server finds `path`.
fn in_named_volume(service: &Yaml, path: &str) -> (String, String) {
    mounts(service)
        .into_iter()
        .filter(|m| !m.is_bind())
        .find_map(|m| {
            let rest = path.strip_prefix(&format!("{}/", m.target))?;
            Some((m.source, rest.to_owned()))
        })
        .unwrap_or_else(|| panic!("{path} is on no volume of the service"))
}

struct ComposeServer {
    name: String,
    node: Option<NodeConfig>,
    gateway: Option<GatewayConfig>,
}

fn compose_servers(compose: &Compose) -> Vec<ComposeServer> {
    compose
        .servers()
        .into_iter()
        .map(|(name, sub, s)| {
            let config_path = bind_source(s, &config_arg(&strings(&s["command"])));
            let env: Vec<(String, String)> = environment(s).into_iter().collect();
            let (node, gateway) = if sub == "node" {
                let c: NodeConfig = load_from(Some(&config_path), env)
                    .unwrap_or_else(|e| panic!("compose service {name}: {e:#}"));
                (Some(c), None)
            } else {
                let c: GatewayConfig = load_from(Some(&config_path), env)
                    .unwrap_or_else(|e| panic!("compose service {name}: {e:#}"));
                (None, Some(c))
            };
            ComposeServer {
                name,
                node,
                gateway,
            }
        })
        .collect()
}

#[test]
fn compose_runs_a_three_comune_federation_with_its_observability() {
    let compose = Compose::load();
    let images: BTreeMap<String, String> = compose
        .services()
        .into_iter()
        .map(|(name, s)| (name, text(s, &["image"])))
        .collect();
    for (service, image) in [
        ("postgres", "postgres:16"),
        ("otel-collector", "otel/opentelemetry-collector-contrib"),
        ("prometheus", "prom/prometheus"),
        ("jaeger", "jaegertracing/all-in-one"),
    ] {
        assert!(
            images.get(service).is_some_and(|i| i.starts_with(image)),
            "service {service} runs {image}: {images:?}"
        );
    }
    for name in ["init", "gateway"] {
        compose.service(name);
    }

    let servers = compose_servers(&compose);
    let nodes: Vec<(&str, &NodeConfig)> = servers
        .iter()
        .filter_map(|s| Some((s.name.as_str(), s.node.as_ref()?)))
        .collect();
    let gateways: Vec<(&str, &GatewayConfig)> = servers
        .iter()
        .filter_map(|s| Some((s.name.as_str(), s.gateway.as_ref()?)))
        .collect();
    assert_eq!(nodes.len(), 3, "three nodes");
    assert_eq!(gateways.len(), 1, "one gateway");
    let comuni: BTreeSet<String> = nodes
        .iter()
        .flat_map(|(_, c)| c.comuni.iter().map(|c| c.profile.istat.to_string()))
        .collect();
    assert_eq!(comuni.len(), 3, "three comuni: {comuni:?}");

    // Every server: built from deploy/Dockerfile, non-root, after the init step, traced to
    // the collector, its certificates on a volume mounted read-only.
    for s in &servers {
        let svc = compose.service(&s.name);
        assert_eq!(text(svc, &["build", "dockerfile"]), "deploy/Dockerfile");
        assert!(root().join(text(svc, &["build", "dockerfile"])).is_file());
        let user = text(svc, &["user"]);
        assert!(
            !user.is_empty() && !user.starts_with("0") && !user.starts_with("root"),
            "{}: runs as a non-root user, not `{user}`",
            s.name
        );
        assert_eq!(
            text(svc, &["depends_on", "init", "condition"]),
            "service_completed_successfully",
            "{} starts after the init step",
            s.name
        );
        let env = environment(svc);
        let otlp = env
            .get("OTEL_EXPORTER_OTLP_ENDPOINT")
            .unwrap_or_else(|| panic!("{}: no OTEL_EXPORTER_OTLP_ENDPOINT", s.name));
        assert_eq!(otlp, "http://otel-collector:4317", "{}", s.name);
        let (tls, listen, metrics) = match (&s.node, &s.gateway) {
            (Some(n), _) => (&n.tls, &n.listen, &n.metrics_listen),
            (_, Some(g)) => (&g.tls, &g.listen, &g.metrics_listen),
            _ => unreachable!(),
        };
        for path in [&tls.ca, &tls.cert, &tls.key] {
            let (volume, _) = in_named_volume(svc, path);
            let mount = mounts(svc)
                .into_iter()
                .find(|m| m.source == volume)
                .expect("the volume is mounted");
            assert!(
                mount.read_only,
                "{}: certificates are mounted read-only",
                s.name
            );
        }
        assert!(
            !metrics.is_empty(),
            "{}: metrics_listen is set, Prometheus scrapes it",
            s.name
        );
        if s.gateway.is_some() {
            assert_eq!(
                env.get("HEALTHCHECK_PORT").map(String::as_str),
                Some(port_of(listen).to_string().as_str()),
                "the image's health check probes the gateway's port"
            );
        } else {
            assert_eq!(
                port_of(listen),
                7401,
                "the image's default health check port"
            );
            assert_eq!(
                s.node.as_ref().map(|n| n.node_id.as_str()),
                Some(s.name.as_str()),
                "a node's service is named after its node_id (the directory's endpoints)"
            );
        }
    }

    // One node on PostgreSQL, the compose postgres service, started before it.
    let on_postgres: Vec<&(&str, &NodeConfig)> = nodes
        .iter()
        .filter(|(_, c)| c.database_url.starts_with("postgres://"))
        .collect();
    assert_eq!(on_postgres.len(), 1, "one node on PostgreSQL");
    let (name, config) = on_postgres[0];
    assert!(config.database_url.contains("@postgres:5432/"));
    assert_eq!(
        text(
            compose.service(name),
            &["depends_on", "postgres", "condition"]
        ),
        "service_healthy"
    );
    let pg_env = environment(compose.service("postgres"));
    let db = config
        .database_url
        .rsplit('/')
        .next()
        .expect("a database name");
    assert_eq!(pg_env.get("POSTGRES_DB").map(String::as_str), Some(db));

    // The gateway's directory: mounted, valid, every node a compose service on its port, and
    // each node serving exactly what the directory gives it.
    let (gw_name, gateway) = gateways[0];
    let gw_service = compose.service(gw_name);
    let directory = load_directory(&bind_source(gw_service, &gateway.directory_file));
    assert_eq!(directory.members.len(), 3);
    for entry in &directory.nodes {
        let (host, port) = endpoint_host_port(&entry.endpoint);
        let (_, node) = nodes
            .iter()
            .find(|(name, _)| *name == host)
            .unwrap_or_else(|| panic!("{} names no compose service", entry.endpoint));
        assert_eq!(node.node_id, entry.node_id);
        assert_eq!(port_of(&node.listen), port);
        assert_eq!(served(node), provided(&directory, &node.node_id));
    }
    assert_eq!(directory.nodes.len(), nodes.len());
    in_named_volume(gw_service, &format!("{}/token.pub", gateway.token_keys_dir));

    // Prometheus scrapes every server's metrics_listen.
    let prometheus = compose.service("prometheus");
    let prom_file = bind_source(prometheus, "/etc/prometheus/prometheus.yml");
    let prom = &yaml_file(&prom_file)[0];
    let targets: BTreeSet<String> = list(&prom["scrape_configs"])
        .iter()
        .flat_map(|job| list(&job["static_configs"]).iter())
        .flat_map(|sc| strings(&sc["targets"]))
        .collect();
    for s in &servers {
        let metrics = match (&s.node, &s.gateway) {
            (Some(n), _) => &n.metrics_listen,
            (_, Some(g)) => &g.metrics_listen,
            _ => unreachable!(),
        };
        let target = format!("{}:{}", s.name, port_of(metrics));
        assert!(
            targets.contains(&target),
            "Prometheus scrapes {target}: {targets:?}"
        );
    }

    // The collector: OTLP/gRPC on 4317 in, traces out to Jaeger.
    let collector = compose.service("otel-collector");
    let command = strings(&collector["command"]).join(" ");
    let config_target = command
        .split("--config=")
        .nth(1)
        .expect("the collector's --config")
        .split_whitespace()
        .next()
        .expect("a path");
    let otel = &yaml_file(&bind_source(collector, config_target))[0];
    assert!(
        text(
            otel,
            &["receivers", "otlp", "protocols", "grpc", "endpoint"]
        )
        .ends_with(":4317")
    );
    let pipeline = &otel["service"]["pipelines"]["traces"];
    assert!(strings(&pipeline["receivers"]).contains(&"otlp".to_owned()));
    let exporters = strings(&pipeline["exporters"]);
    let to_jaeger = exporters
        .iter()
        .find(|e| text(otel, &["exporters", e.as_str(), "endpoint"]).starts_with("jaeger:"))
        .expect("an exporter sends the traces to Jaeger");
    assert!(otel["exporters"][to_jaeger.as_str()].is_hash());
    for e in &exporters {
        assert!(
            otel["exporters"][e.as_str()].is_hash()
                || otel["exporters"][e.as_str()].is_null()
                || e == "debug",
            "exporter {e} is defined"
        );
    }
    for p in strings(&pipeline["processors"]) {
        assert!(
            !otel["processors"][p.as_str()].is_badvalue(),
            "processor {p} is defined"
        );
    }
}

/// The init step's script, run with the real binary against a scratch directory standing for
/// its volumes: it must write every certificate, key and token key the servers name, and run
/// a second time without harm.
#[test]
fn the_compose_init_step_runs_with_the_real_binary() {
    if Command::new("bash").arg("-c").arg("true").status().is_err() {
        eprintln!("skipped: no bash on this machine");
        return;
    }
    let compose = Compose::load();
    let init = compose.service("init");
    assert_eq!(
        strings(&init["entrypoint"]).first().map(String::as_str),
        Some("/bin/bash")
    );
    let commands = strings(&init["command"]);
    assert_eq!(commands.len(), 1, "one script");
    // Compose escapes `$` as `$$` in the file.
    let mut script = commands[0].replace("$$", "$");
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let mut volume_targets: Vec<Mount> =
        mounts(init).into_iter().filter(|m| !m.is_bind()).collect();
    // Longest targets first, so that nested mount points are replaced before their parents.
    volume_targets.sort_by_key(|m| std::cmp::Reverse(m.target.len()));
    for m in &volume_targets {
        let dir = scratch.path().join(&m.source);
        std::fs::create_dir_all(&dir).expect("volume directory");
        script = script.replace(&m.target, &dir.display().to_string());
    }
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_unione"));
    let path = format!(
        "{}:{}",
        binary.parent().expect("the binary's directory").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for round in 0..2 {
        let out = Command::new("bash")
            .arg("-ec")
            .arg(&script)
            .env("PATH", &path)
            .output()
            .expect("running the init script");
        assert!(
            out.status.success(),
            "init step, round {round}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout
                .lines()
                .any(|l| l.matches('.').count() == 2 && l.len() > 40),
            "the init step prints an admin token: {stdout}"
        );
    }

    // Every file a server names exists where the init step put it.
    for s in compose_servers(&compose) {
        let svc = compose.service(&s.name);
        let (tls, extra) = match (&s.node, &s.gateway) {
            (Some(n), _) => (n.tls.clone(), Vec::new()),
            (_, Some(g)) => (
                g.tls.clone(),
                vec![format!("{}/token.pub", g.token_keys_dir)],
            ),
            _ => unreachable!(),
        };
        for path in [tls.ca, tls.cert, tls.key].into_iter().chain(extra) {
            let (volume, rest) = in_named_volume(svc, &path);
            let file = scratch.path().join(volume).join(rest);
            assert!(
                file.is_file(),
                "{}: {path} is not written by the init step ({})",
                s.name,
                file.display()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dockerfile and systemd

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn dockerfile_instructions() -> Vec<(String, String)> {
    let text = read(&deploy().join("Dockerfile"));
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        if let Some((op, args)) = current.trim().split_once(' ') {
            out.push((op.to_ascii_uppercase(), args.trim().to_owned()));
        }
        current.clear();
    }
    out
}

#[test]
fn the_dockerfile_builds_the_binary_and_runs_it_unprivileged() {
    let ins = dockerfile_instructions();
    let of = |op: &str| -> Vec<&String> {
        ins.iter()
            .filter(|(o, _)| o == op)
            .map(|(_, a)| a)
            .collect()
    };
    let froms = of("FROM");
    assert_eq!(froms.len(), 2, "a builder and a runtime stage");
    assert!(froms[0].starts_with("rust:1-bookworm AS builder"));
    assert!(froms[1].starts_with("debian:bookworm-slim"));
    assert!(
        of("RUN")
            .iter()
            .any(|r| r.contains("cargo build --release --locked"))
    );
    assert!(of("RUN").iter().any(|r| r.contains("ca-certificates")));

    let users = of("USER");
    let user = users.last().expect("a USER");
    let uid = user.split(':').next().expect("a uid");
    assert!(
        uid != "0" && uid != "root",
        "the image runs as a non-root user"
    );
    assert_eq!(uid, "10001");
    let health = of("HEALTHCHECK");
    assert_eq!(health.len(), 1, "a HEALTHCHECK");
    assert!(health[0].contains("CMD"));
    let env = of("ENV")
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        env.contains(&format!(
            "HEALTHCHECK_PORT={}",
            port_of(&NodeConfig::default().listen)
        )),
        "the health check's default port is a node's default port"
    );
    let entry = of("ENTRYPOINT");
    assert!(
        entry
            .last()
            .is_some_and(|e| e.contains("/usr/local/bin/unione"))
    );

    // The build copies files that exist; the ignore file keeps each of them in the context.
    let ignore = read(&deploy().join("Dockerfile.dockerignore"));
    let kept: BTreeSet<&str> = ignore
        .lines()
        .filter_map(|l| l.trim().strip_prefix('!'))
        .map(|l| l.trim_end_matches('/'))
        .collect();
    for copy in of("COPY") {
        if copy.starts_with("--from=") {
            assert!(
                copy.contains("/usr/local/bin/unione"),
                "only the binary: {copy}"
            );
            continue;
        }
        let parts: Vec<&str> = copy.split_whitespace().collect();
        for source in &parts[..parts.len() - 1] {
            assert!(
                root().join(source).exists(),
                "COPY {source}: no such file in the repository"
            );
            assert!(
                kept.contains(source.trim_end_matches('/')),
                "{source} is excluded from the build context"
            );
        }
    }
    // The workspace members are all copied.
    let manifest = toml_table(&root().join("Cargo.toml"));
    let members = manifest["workspace"]["members"]
        .as_array()
        .expect("workspace members");
    for member in members {
        let member = member.as_str().expect("a path");
        let top = member.split('/').next().expect("a directory");
        assert!(
            kept.contains(top),
            "workspace member {member} is not in the build context"
        );
    }
}

#[test]
fn the_systemd_units_are_hardened() {
    let units: Vec<PathBuf> = walk(&deploy().join("systemd"))
        .into_iter()
        .filter(|p| has_ext(p, &["service"]))
        .collect();
    assert_eq!(units.len(), 2, "a node and a gateway");
    for unit in units {
        let content = read(&unit);
        let settings: BTreeMap<&str, &str> = content
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let name = unit.display().to_string();
        assert_eq!(settings.get("NoNewPrivileges"), Some(&"yes"), "{name}");
        assert_eq!(settings.get("ProtectSystem"), Some(&"strict"), "{name}");
        assert!(settings.contains_key("StateDirectory"), "{name}");
        let user = settings.get("User").expect("a User");
        assert!(*user != "root" && *user != "0", "{name}");
        let exec = settings.get("ExecStart").expect("ExecStart");
        let args: Vec<&str> = exec.split_whitespace().collect();
        assert_eq!(args[0], "/usr/local/bin/unione");
        assert!(["node", "gateway"].contains(&args[1]), "{name}");
        assert_eq!(args[2], "--config", "{name}");
    }
}

/// The subcommands and flags the deployment files run exist in the binary's help.
#[test]
fn the_commands_in_deploy_exist_in_the_binary() {
    let compose = Compose::load();
    let mut lines: Vec<Vec<String>> = Vec::new();
    for (_, s) in compose.services() {
        let command = strings(&s["command"]);
        if command
            .first()
            .is_some_and(|c| ["node", "gateway"].contains(&c.as_str()))
        {
            lines.push(command);
        }
    }
    let init = strings(&compose.service("init")["command"]).join("\n");
    for line in init.lines() {
        for part in line.split("|| ") {
            let words: Vec<String> = part.split_whitespace().map(str::to_owned).collect();
            if let Some(at) = words.iter().position(|w| w == "unione") {
                lines.push(words[at + 1..].to_vec());
            }
        }
    }
    for unit in ["unione-node.service", "unione-gateway.service"] {
        let content = read(&deploy().join("systemd").join(unit));
        let exec = content
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("ExecStart");
        lines.push(exec.split_whitespace().skip(1).map(str::to_owned).collect());
    }
    let binary = env!("CARGO_BIN_EXE_unione");
    let mut help_cache: BTreeMap<Vec<String>, String> = BTreeMap::new();
    for words in &lines {
        let subcommands: Vec<String> = words
            .iter()
            .take_while(|w| !w.starts_with('-'))
            .cloned()
            .collect();
        assert!(!subcommands.is_empty(), "{words:?}");
        let help = help_cache.entry(subcommands.clone()).or_insert_with(|| {
            let out = Command::new(binary)
                .args(&subcommands)
                .arg("--help")
                .output()
                .expect("running unione --help");
            assert!(
                out.status.success(),
                "`unione {} --help` fails: {}",
                subcommands.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        });
        for flag in words.iter().filter(|w| w.starts_with("--")) {
            let flag = flag.split('=').next().expect("a flag");
            assert!(
                help.contains(flag),
                "`unione {}` has no {flag}",
                subcommands.join(" ")
            );
        }
    }
    assert!(lines.len() >= 8, "{lines:?}");
}

// ---------------------------------------------------------------------------------------------
// Kubernetes

fn k8s() -> PathBuf {
    deploy().join("k8s")
}

/// What the kustomizations list: the manifests (resources) and the patches.
struct Kustomize {
    resources: BTreeSet<PathBuf>,
    patches: BTreeSet<PathBuf>,
    generated: BTreeSet<PathBuf>,
}

fn kustomize_files() -> Kustomize {
    let mut k = Kustomize {
        resources: BTreeSet::new(),
        patches: BTreeSet::new(),
        generated: BTreeSet::new(),
    };
    let kustomizations: Vec<PathBuf> = walk(&k8s())
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "kustomization.yaml"))
        .collect();
    assert!(kustomizations.len() >= 3, "a base and two overlays");
    for file in kustomizations {
        let dir = file.parent().expect("a directory");
        let doc = &yaml_file(&file)[0];
        assert_eq!(
            text(doc, &["apiVersion"]),
            "kustomize.config.k8s.io/v1beta1"
        );
        assert_eq!(text(doc, &["kind"]), "Kustomization");
        for r in strings(&doc["resources"]) {
            let path = dir.join(&r);
            if path.is_dir() {
                assert!(
                    path.join("kustomization.yaml").is_file(),
                    "{}: resource {r} is a directory with no kustomization.yaml",
                    file.display()
                );
            } else {
                assert!(
                    path.is_file(),
                    "{}: resource {r} does not exist",
                    file.display()
                );
                k.resources.insert(path);
            }
        }
        for p in list(&doc["patches"]) {
            let path = text(p, &["path"]);
            let path = dir.join(&path);
            assert!(
                path.is_file(),
                "{}: patch {} does not exist",
                file.display(),
                path.display()
            );
            k.patches.insert(path);
        }
        assert!(
            doc["secretGenerator"].is_badvalue(),
            "{}: Secrets are created outside the manifests",
            file.display()
        );
        for generator in list(&doc["configMapGenerator"]) {
            for f in strings(&generator["files"]) {
                let source = f.split_once('=').map_or(f.as_str(), |(_, s)| s);
                let path = dir.join(source);
                assert!(
                    path.is_file(),
                    "{}: generator file {source} does not exist",
                    file.display()
                );
                k.generated.insert(path);
            }
        }
    }
    k
}

fn pod_spec(workload: &Yaml) -> &Yaml {
    &workload["spec"]["template"]["spec"]
}

fn pod_labels(workload: &Yaml) -> BTreeMap<String, String> {
    scalar_map(&workload["spec"]["template"]["metadata"]["labels"])
}

fn selects(selector: &Yaml, labels: &BTreeMap<String, String>) -> bool {
    scalar_map(&selector["matchLabels"])
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
}

fn is_workload(doc: &Yaml) -> bool {
    ["Deployment", "StatefulSet"].contains(&text(doc, &["kind"]).as_str())
}

/// Checks one Deployment or StatefulSet: non-root, resources, probes (none of them the gRPC
/// probe, which cannot speak TLS), read-only Secret mounts, no privilege escalation.
fn check_workload(doc: &Yaml, what: &str) {
    let spec = pod_spec(doc);
    let pod_sc = &spec["securityContext"];
    let containers = list(&spec["containers"]);
    assert!(!containers.is_empty(), "{what}: containers");
    let secret_volumes: BTreeSet<String> = list(&spec["volumes"])
        .iter()
        .filter(|v| v["secret"].is_hash())
        .map(|v| text(v, &["name"]))
        .collect();
    for c in containers.iter().chain(list(&spec["initContainers"])) {
        let name = format!("{what} container {}", text(c, &["name"]));
        let sc = &c["securityContext"];
        let non_root = sc["runAsNonRoot"]
            .as_bool()
            .or(pod_sc["runAsNonRoot"].as_bool())
            == Some(true);
        assert!(non_root, "{name}: runAsNonRoot");
        let uid = sc["runAsUser"].as_i64().or(pod_sc["runAsUser"].as_i64());
        assert!(uid.is_some_and(|u| u > 0), "{name}: a non-root runAsUser");
        assert_eq!(
            sc["allowPrivilegeEscalation"].as_bool(),
            Some(false),
            "{name}"
        );
        assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true), "{name}");
        assert!(
            strings(&sc["capabilities"]["drop"]).contains(&"ALL".to_owned()),
            "{name}: drops every capability"
        );
        for r in ["cpu", "memory"] {
            assert!(
                scalar(&c["resources"]["requests"][r]).is_some(),
                "{name}: resources.requests.{r}"
            );
        }
        assert!(
            scalar(&c["resources"]["limits"]["memory"]).is_some(),
            "{name}: a memory limit"
        );
        for probe in ["readinessProbe", "livenessProbe"] {
            let p = &c[probe];
            assert!(p.is_hash(), "{name}: {probe}");
            assert!(
                p["grpc"].is_badvalue(),
                "{name}: {probe} cannot be a gRPC probe (TLS only)"
            );
            if p["exec"].is_hash() {
                // `unione health <kind> --config <file>`, with the kind and the file the
                // container serves with.
                let command: Vec<String> = list(&p["exec"]["command"])
                    .iter()
                    .filter_map(scalar)
                    .collect();
                let args: Vec<String> = list(&c["args"]).iter().filter_map(scalar).collect();
                assert_eq!(
                    command.get(..3).map(|c| c.join(" ")),
                    Some(format!(
                        "unione health {}",
                        args.first().cloned().unwrap_or_default()
                    )),
                    "{name}: {probe} runs `unione health` for what the container runs"
                );
                assert_eq!(
                    command.get(3..),
                    args.get(1..),
                    "{name}: {probe} checks the served configuration"
                );
                continue;
            }
            assert!(
                p["tcpSocket"].is_hash() || p["httpGet"].is_hash(),
                "{name}: {probe} is a TCP or HTTP probe"
            );
            let port = scalar(get(p, &["tcpSocket", "port"]))
                .or_else(|| scalar(get(p, &["httpGet", "port"])))
                .expect("a probe port");
            let ports: Vec<(String, String)> = list(&c["ports"])
                .iter()
                .map(|p| (text(p, &["name"]), text(p, &["containerPort"])))
                .collect();
            assert!(
                ports.iter().any(|(n, num)| *n == port || *num == port),
                "{name}: {probe} probes port {port}, not a container port"
            );
        }
        for m in list(&c["volumeMounts"]) {
            if secret_volumes.contains(&text(m, &["name"])) {
                assert_eq!(
                    m["readOnly"].as_bool(),
                    Some(true),
                    "{name}: Secret volume {} is mounted read-only",
                    text(m, &["name"])
                );
            }
        }
    }
    assert!(
        spec["automountServiceAccountToken"].as_bool() == Some(false),
        "{what}: no service account token"
    );
}

#[test]
fn kubernetes_manifests_are_complete_and_hardened() {
    let k = kustomize_files();
    // Every YAML file under k8s/ is a kustomization, a resource or a patch.
    for file in walk(&k8s()).into_iter().filter(|p| has_ext(p, &["yaml"])) {
        assert!(
            file.file_name().is_some_and(|n| n == "kustomization.yaml")
                || k.resources.contains(&file)
                || k.patches.contains(&file),
            "{} is listed by no kustomization",
            file.display()
        );
    }
    let mut kinds = BTreeMap::<String, usize>::new();
    let mut workloads = Vec::new();
    let mut policies = Vec::new();
    for file in k.resources.iter().chain(&k.patches) {
        for doc in yaml_file(file) {
            let what = format!("{} {}", file.display(), text(&doc, &["kind"]));
            for key in ["apiVersion", "kind"] {
                assert!(!text(&doc, &[key]).is_empty(), "{what}: {key}");
            }
            assert!(
                !text(&doc, &["metadata", "name"]).is_empty(),
                "{what}: metadata.name"
            );
            if !k.resources.contains(file) {
                continue;
            }
            let kind = text(&doc, &["kind"]);
            *kinds.entry(kind.clone()).or_default() += 1;
            assert!(
                kind != "Secret",
                "{what}: Secrets are created outside the manifests"
            );
            if is_workload(&doc) {
                check_workload(&doc, &what);
                workloads.push(doc);
            } else if kind == "NetworkPolicy" {
                policies.push(doc);
            }
        }
    }
    for kind in [
        "Deployment",
        "StatefulSet",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "PersistentVolumeClaim",
    ] {
        assert!(kinds.contains_key(kind), "no {kind}: {kinds:?}");
    }

    // The StatefulSet (a SQLite node) keeps its data on a volumeClaimTemplate mounted where
    // its configuration puts data_dir.
    for sts in workloads
        .iter()
        .filter(|w| text(w, &["kind"]) == "StatefulSet")
    {
        let claims: Vec<String> = list(&sts["spec"]["volumeClaimTemplates"])
            .iter()
            .map(|c| text(c, &["metadata", "name"]))
            .collect();
        assert!(
            !claims.is_empty(),
            "a StatefulSet has a volumeClaimTemplate"
        );
        let mounted = list(&pod_spec(sts)["containers"])
            .iter()
            .flat_map(|c| list(&c["volumeMounts"]))
            .any(|m| claims.contains(&text(m, &["name"])));
        assert!(mounted, "the claim is mounted");
    }

    // NetworkPolicies: a default deny; the nodes' port open to the gateways only, their
    // metrics port to the monitoring namespace only.
    let gateway_labels: Vec<BTreeMap<String, String>> = workloads
        .iter()
        .filter(|w| text(w, &["metadata", "name"]) == "unione-gateway")
        .map(pod_labels)
        .collect();
    let node_labels: Vec<BTreeMap<String, String>> = workloads
        .iter()
        .filter(|w| text(w, &["metadata", "name"]) != "unione-gateway")
        .map(pod_labels)
        .collect();
    assert_eq!(gateway_labels.len(), 1);
    assert!(node_labels.len() >= 3, "the overlays' nodes");
    assert!(
        policies.iter().any(|p| {
            p["spec"]["podSelector"]
                .as_hash()
                .is_some_and(|h| h.is_empty())
                && p["spec"]["ingress"].is_badvalue()
                && strings(&p["spec"]["policyTypes"]).contains(&"Ingress".to_owned())
        }),
        "a default-deny ingress policy"
    );
    let node_policies: Vec<&Yaml> = policies
        .iter()
        .filter(|p| {
            node_labels
                .iter()
                .all(|l| selects(&p["spec"]["podSelector"], l))
                && !p["spec"]["podSelector"]["matchLabels"].is_badvalue()
        })
        .collect();
    assert_eq!(node_policies.len(), 1, "one policy selects every node pod");
    let policy = node_policies[0];
    assert!(
        !gateway_labels
            .iter()
            .any(|l| selects(&policy["spec"]["podSelector"], l)),
        "the node policy does not select the gateways"
    );
    let mut grpc_rule = false;
    for rule in list(&policy["spec"]["ingress"]) {
        let ports: Vec<String> = list(&rule["ports"])
            .iter()
            .map(|p| text(p, &["port"]))
            .collect();
        let from = list(&rule["from"]);
        assert!(!from.is_empty(), "every rule names its peers");
        assert!(!ports.is_empty(), "every rule names its ports");
        for peer in from {
            let from_gateways = peer["namespaceSelector"].is_badvalue()
                && peer["ipBlock"].is_badvalue()
                && gateway_labels
                    .iter()
                    .all(|l| selects(&peer["podSelector"], l))
                && !node_labels.iter().any(|l| selects(&peer["podSelector"], l));
            let from_monitoring = peer["podSelector"].is_badvalue()
                && text(
                    peer,
                    &[
                        "namespaceSelector",
                        "matchLabels",
                        "kubernetes.io/metadata.name",
                    ],
                ) == "monitoring";
            if from_gateways {
                assert_eq!(ports, ["7401"], "the gateways reach the node port only");
                grpc_rule = true;
            } else {
                assert!(from_monitoring, "a node policy peer is neither: {peer:?}");
                assert_eq!(ports, ["9464"], "monitoring reaches the metrics port only");
            }
        }
    }
    assert!(grpc_rule, "the gateways may reach the nodes");
}

// Rendering with `kubectl kustomize`: checks across objects.

fn render(overlay: &str) -> Option<Vec<Yaml>> {
    let out = match Command::new("kubectl")
        .arg("kustomize")
        .arg(k8s().join("overlays").join(overlay))
        .output()
    {
        Ok(out) => out,
        Err(_) => {
            eprintln!("skipped: kubectl is not installed");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "kubectl kustomize {overlay}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = String::from_utf8_lossy(&out.stdout).into_owned();
    validate_schemas(overlay, &rendered);
    Some(parse_yaml(&rendered, &format!("the {overlay} overlay")))
}

/// Validates rendered manifests against the Kubernetes schemas with PyPI's
/// kubernetes-validate, when it is installed (`.ci/run` installs it).
fn validate_schemas(overlay: &str, rendered: &str) {
    let dir = tempfile::tempdir().expect("scratch");
    let file = dir.path().join(format!("{overlay}.yaml"));
    std::fs::write(&file, rendered).expect("writing the rendered manifests");
    match Command::new("kubernetes-validate")
        .args(["--strict", "--quiet"])
        .arg(&file)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "kubernetes-validate refuses the {overlay} overlay:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => eprintln!("schema validation skipped: kubernetes-validate is not installed"),
    }
}

fn named<'a>(docs: &'a [Yaml], kind: &str, name: &str) -> Option<&'a Yaml> {
    docs.iter()
        .find(|d| text(d, &["kind"]) == kind && text(d, &["metadata", "name"]) == name)
}

/// The configuration a rendered container runs with: its `--config` file taken from the
/// mounted ConfigMap, its environment (values from Secrets replaced by placeholders).
struct ContainerConfig {
    /// `node` or `gateway`.
    subcommand: String,
    /// The configuration file, written to `_dir`.
    path: PathBuf,
    /// The container's environment.
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

fn container_config(docs: &[Yaml], spec: &Yaml, container: &Yaml) -> ContainerConfig {
    let args = strings(&container["args"]);
    let config = config_arg(&args);
    let (volume, key) = mounted_configmap(spec, container, &config)
        .unwrap_or_else(|| panic!("{config} is not on a ConfigMap"));
    let cm = named(docs, "ConfigMap", &volume).unwrap_or_else(|| panic!("no ConfigMap {volume}"));
    let data = text(cm, &["data", key.as_str()]);
    assert!(!data.is_empty(), "ConfigMap {volume} has no {key}");
    let dir = tempfile::tempdir().expect("scratch");
    let path = dir.path().join(&key);
    std::fs::write(&path, data).expect("writing the configuration");
    let env = list(&container["env"])
        .iter()
        .map(|e| {
            let name = text(e, &["name"]);
            let value = scalar(&e["value"]).unwrap_or_else(|| {
                assert!(
                    e["valueFrom"]["secretKeyRef"].is_hash(),
                    "{name} is a value or from a Secret"
                );
                secret_placeholder(&name)
            });
            (name, value)
        })
        .collect();
    ContainerConfig {
        subcommand: args[0].clone(),
        path,
        env,
        _dir: dir,
    }
}

/// The ConfigMap (its rendered name) and key a mounted file comes from.
fn mounted_configmap(spec: &Yaml, container: &Yaml, file: &str) -> Option<(String, String)> {
    let (volume, rest) = mount_of(container, file)?;
    let v = list(&spec["volumes"])
        .iter()
        .find(|v| text(v, &["name"]) == volume)?;
    let name = text(v, &["configMap", "name"]);
    (!name.is_empty()).then_some((name, rest))
}

/// The volume a path is on, and the path inside it.
fn mount_of(container: &Yaml, file: &str) -> Option<(String, String)> {
    list(&container["volumeMounts"]).iter().find_map(|m| {
        let rest = file.strip_prefix(&format!("{}/", text(m, &["mountPath"])))?;
        Some((text(m, &["name"]), rest.to_owned()))
    })
}

fn volume_kind(spec: &Yaml, container: &Yaml, file: &str) -> String {
    let (volume, _) = mount_of(container, file).unwrap_or_else(|| panic!("{file} is on no volume"));
    let in_template = list(&spec["volumes"])
        .iter()
        .find(|v| text(v, &["name"]) == volume);
    match in_template {
        Some(v) => ["secret", "configMap", "emptyDir", "persistentVolumeClaim"]
            .into_iter()
            .find(|k| !v[*k].is_badvalue())
            .unwrap_or("other")
            .to_owned(),
        None => "volumeClaimTemplate".to_owned(),
    }
}

fn check_rendered(overlay: &str, gateway_replicas: i64) {
    let Some(docs) = render(overlay) else {
        return;
    };
    for d in &docs {
        if text(d, &["kind"]) != "Namespace" {
            assert_eq!(
                text(d, &["metadata", "namespace"]),
                "unione",
                "{overlay}: {} {}",
                text(d, &["kind"]),
                text(d, &["metadata", "name"])
            );
        }
    }
    let gateway = named(&docs, "Deployment", "unione-gateway").expect("the gateway");
    assert_eq!(gateway["spec"]["replicas"].as_i64(), Some(gateway_replicas));
    let pdb = named(&docs, "PodDisruptionBudget", "unione-gateway").expect("its PDB");
    assert!(selects(&pdb["spec"]["selector"], &pod_labels(gateway)));

    let mut directory = None;
    let mut nodes: Vec<(NodeConfig, &Yaml)> = Vec::new();
    for w in docs.iter().filter(|d| is_workload(d)) {
        let what = format!("{overlay}: {}", text(w, &["metadata", "name"]));
        check_workload(w, &what);
        let spec = pod_spec(w);
        // Every ConfigMap a pod mounts is in the output (generated names carry a hash).
        for v in list(&spec["volumes"]) {
            let cm = text(v, &["configMap", "name"]);
            if !cm.is_empty() {
                assert!(
                    named(&docs, "ConfigMap", &cm).is_some(),
                    "{what}: ConfigMap {cm} is not rendered"
                );
            }
        }
        let container = &list(&spec["containers"])[0];
        let ContainerConfig {
            subcommand: sub,
            path,
            env,
            _dir,
        } = container_config(&docs, spec, container);
        let ports: BTreeMap<String, u16> = list(&container["ports"])
            .iter()
            .map(|p| {
                (
                    text(p, &["name"]),
                    text(p, &["containerPort"]).parse().expect("a port"),
                )
            })
            .collect();
        let (tls, listen, metrics) = if sub == "gateway" {
            let c: GatewayConfig =
                load_from(Some(&path), env).unwrap_or_else(|e| panic!("{what}: {e:#}"));
            let (cm, key) = mounted_configmap(spec, container, &c.directory_file)
                .unwrap_or_else(|| panic!("{what}: the directory is not on a ConfigMap"));
            let file = named(&docs, "ConfigMap", &cm).expect("the directory's ConfigMap");
            let loaded = DirectoryFile::parse(&text(file, &["data", key.as_str()]))
                .and_then(|f| f.validate())
                .unwrap_or_else(|e| panic!("{what}: the directory: {e}"));
            directory = Some(loaded);
            assert_eq!(
                volume_kind(spec, container, &format!("{}/token.pub", c.token_keys_dir)),
                "secret"
            );
            if gateway_replicas > 1 {
                assert!(
                    c.database_url.starts_with("postgres://"),
                    "{what}: replicas share a PostgreSQL database"
                );
            }
            (c.tls, c.listen, c.metrics_listen)
        } else {
            let c: NodeConfig =
                load_from(Some(&path), env).unwrap_or_else(|e| panic!("{what}: {e:#}"));
            if text(w, &["kind"]) == "StatefulSet" {
                assert!(c.database_url.is_empty(), "{what}: SQLite");
                assert_eq!(
                    volume_kind(spec, container, &format!("{}/node.sqlite", c.data_dir)),
                    "volumeClaimTemplate"
                );
            } else {
                assert!(
                    c.database_url.starts_with("postgres://"),
                    "{what}: a node Deployment runs over PostgreSQL"
                );
            }
            let out = (c.tls.clone(), c.listen.clone(), c.metrics_listen.clone());
            nodes.push((c, w));
            out
        };
        for file in [&tls.ca, &tls.cert, &tls.key] {
            assert_eq!(
                volume_kind(spec, container, file),
                "secret",
                "{what}: {file}"
            );
        }
        assert_eq!(ports.get("grpc"), Some(&port_of(&listen)), "{what}");
        assert_eq!(ports.get("metrics"), Some(&port_of(&metrics)), "{what}");
    }

    // The directory names every node, through a Service that selects its pods on its port,
    // and each node serves exactly what the directory gives it.
    let directory = directory.expect("the gateway's directory");
    assert_eq!(directory.nodes.len(), nodes.len(), "{overlay}");
    for entry in &directory.nodes {
        let (node, workload) = nodes
            .iter()
            .find(|(c, _)| c.node_id == entry.node_id)
            .unwrap_or_else(|| panic!("{overlay}: no workload runs node {}", entry.node_id));
        let (host, port) = endpoint_host_port(&entry.endpoint);
        let service = host
            .strip_suffix(".unione.svc")
            .unwrap_or_else(|| panic!("{}: a Service of the namespace", entry.endpoint));
        let svc = named(&docs, "Service", service)
            .unwrap_or_else(|| panic!("{overlay}: no Service {service}"));
        assert!(
            scalar_map(&svc["spec"]["selector"])
                .iter()
                .all(|(k, v)| pod_labels(workload).get(k) == Some(v)),
            "{overlay}: Service {service} selects node {}",
            entry.node_id
        );
        assert!(
            list(&svc["spec"]["ports"])
                .iter()
                .any(|p| text(p, &["port"]) == port.to_string()),
            "{overlay}: Service {service} has port {port}"
        );
        assert_eq!(
            served(node),
            provided(&directory, &node.node_id),
            "{overlay}"
        );
    }
    if overlay == "large" {
        let hpa = named(&docs, "HorizontalPodAutoscaler", "unione-gateway").expect("an HPA");
        assert_eq!(
            text(hpa, &["spec", "scaleTargetRef", "name"]),
            "unione-gateway"
        );
        assert!(
            hpa["spec"]["minReplicas"]
                .as_i64()
                .is_some_and(|m| m >= gateway_replicas)
        );
    }
}

#[test]
fn the_small_overlay_renders_one_gateway_and_a_sqlite_node() {
    check_rendered("small", 1);
}

#[test]
fn the_large_overlay_renders_replicated_gateways_and_nodes_on_postgres() {
    check_rendered("large", 3);
}

#[test]
fn validation_checks_certificate_paths_for_emptiness_only() {
    // The TLS files named in deploy/ exist only where they are mounted; the configuration
    // types refuse a missing name, not a missing file (the server refuses that at start).
    let mut config: NodeConfig = load_from(
        Some(&deploy().join("compose").join("luni.toml")),
        Vec::new(),
    )
    .expect("valid");
    config.validate().expect("valid without the files");
    config.tls.key.clear();
    assert!(config.validate().is_err());
}
