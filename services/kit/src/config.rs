//! Layered configuration, validated once at start: the binary's defaults, then a TOML file,
//! then `UNIONE_` environment variables (`UNIONE_LISTEN=...`; nested keys with a double
//! underscore, `UNIONE_TLS__CERT=...`), then the binary's `validate()`.

use std::path::Path;

use anyhow::{Context, bail};
use serde::{Serialize, de::DeserializeOwned};

/// The prefix of every environment variable that configures a server.
pub const ENV_PREFIX: &str = "UNIONE_";

/// Variables with the prefix that are not configuration keys.
const NOT_CONFIG: &[&str] = &["UNIONE_LOG", "UNIONE_PYTHON"];

/// A configuration that can check itself after loading.
pub trait Validate {
    /// Refuses values that cannot work, naming the key at fault.
    fn validate(&self) -> anyhow::Result<()>;
}

/// Loads `T`: defaults, then `file` if given, then the environment, then `validate()`.
pub fn load<T>(file: Option<&Path>) -> anyhow::Result<T>
where
    T: Serialize + DeserializeOwned + Default + Validate,
{
    load_from(file, std::env::vars())
}

/// [`load`] with the environment given explicitly (for tests).
pub fn load_from<T>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<T>
where
    T: Serialize + DeserializeOwned + Default + Validate,
{
    let mut merged = toml::Value::try_from(T::default()).context("serializing the defaults")?;
    if let Some(path) = file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let from_file: toml::Value =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        merge(&mut merged, from_file);
    }
    for (key, value) in env {
        let Some(rest) = key.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if NOT_CONFIG.contains(&key.as_str()) || rest.is_empty() {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        set_path(&mut merged, &path, parse_scalar(&value))
            .with_context(|| format!("applying {key}"))?;
    }
    let config: T = merged.try_into().context("invalid configuration")?;
    config.validate()?;
    Ok(config)
}

fn merge(base: &mut toml::Value, overlay: toml::Value) {
    match (base, overlay) {
        (toml::Value::Table(base), toml::Value::Table(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

fn set_path(root: &mut toml::Value, path: &[String], value: toml::Value) -> anyhow::Result<()> {
    let Some((last, parents)) = path.split_last() else {
        bail!("empty key")
    };
    let mut node = root;
    for key in parents {
        let table = node.as_table_mut().context("not a table")?;
        node = table
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    node.as_table_mut()
        .context("not a table")?
        .insert(last.clone(), value);
    Ok(())
}

/// Reads an environment value as a TOML scalar or array when it parses as one (`8`, `true`,
/// `["a","b"]`), else as a string.
fn parse_scalar(raw: &str) -> toml::Value {
    let wrapped = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&wrapped) {
        Ok(mut table) => table
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, serde::Deserialize)]
    #[serde(default)]
    struct Sample {
        listen: String,
        workers: u32,
        tls: Tls,
    }

    #[derive(Debug, Default, Serialize, serde::Deserialize)]
    #[serde(default)]
    struct Tls {
        cert: String,
    }

    impl Default for Sample {
        fn default() -> Self {
            Self {
                listen: "127.0.0.1:1".into(),
                workers: 2,
                tls: Tls::default(),
            }
        }
    }

    impl Validate for Sample {
        fn validate(&self) -> anyhow::Result<()> {
            if self.workers == 0 {
                bail!("workers must be at least 1");
            }
            Ok(())
        }
    }

    #[test]
    fn defaults_then_file_then_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "workers = 4\n[tls]\ncert = \"file.pem\"\n").expect("write");
        let env = vec![
            ("UNIONE_TLS__CERT".to_owned(), "env.pem".to_owned()),
            ("UNIONE_LOG".to_owned(), "debug".to_owned()),
            ("OTHER".to_owned(), "x".to_owned()),
        ];
        let c: Sample = load_from(Some(&file), env).expect("loads");
        assert_eq!(c.listen, "127.0.0.1:1");
        assert_eq!(c.workers, 4);
        assert_eq!(c.tls.cert, "env.pem");
    }

    #[test]
    fn validation_runs_last() {
        let env = vec![("UNIONE_WORKERS".to_owned(), "0".to_owned())];
        let err = load_from::<Sample>(None, env).expect_err("refused");
        assert!(err.to_string().contains("workers"));
    }
}
