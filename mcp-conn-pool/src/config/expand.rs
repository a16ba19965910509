//! `${…}` in config strings, and `envFile`s.

use std::path::Path;

use super::*;

/// Reads an `envFile`: `KEY=VALUE` lines; blank lines and `#` comments
/// skipped; `export ` and matching quotes around the value removed.
pub(super) fn read_env_file(
    file: &str,
    path: &str,
    context: &ConfigContext,
) -> Result<Vec<(String, String)>, PoolConfigError> {
    let file = Path::new(file);
    let full = match (&context.base_dir, file.is_absolute()) {
        (_, true) => file.to_path_buf(),
        (Some(base), false) => base.join(file),
        (None, false) => {
            return Err(PoolConfigError::new(
                path,
                format!(
                    "relative path {:?} but no config file folder to take it from",
                    file.display().to_string()
                ),
            ))
        }
    };
    let text = std::fs::read_to_string(&full)
        .map_err(|e| PoolConfigError::new(path, format!("cannot read {}: {e}", full.display())))?;
    let mut vars: Vec<(String, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(PoolConfigError::new(
                path,
                format!("{} line {}: expected KEY=VALUE", full.display(), i + 1),
            ));
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(PoolConfigError::new(
                path,
                format!(
                    "{} line {}: invalid variable name {key:?}",
                    full.display(),
                    i + 1
                ),
            ));
        }
        let value = value.trim();
        let value = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        vars.retain(|(k, _)| k != key);
        vars.push((key.to_owned(), value.to_owned()));
    }
    Ok(vars)
}

/// Expands `${…}` in config strings.
pub(super) struct Expander<'a> {
    pub(super) lookup: &'a dyn Fn(&str) -> Option<String>,
    pub(super) context: &'a ConfigContext,
}

impl Expander<'_> {
    /// Replaces `${VAR}`, `${env:VAR}` and `${VAR:-default}`; `$${` is a
    /// literal `${`.
    pub(super) fn expand(&self, text: &str, path: &str) -> Result<String, PoolConfigError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if rest[..start].ends_with('$') {
                // `$${`: an escaped, literal `${`.
                out.push_str(&rest[..start - 1]);
                out.push_str("${");
                rest = &rest[start + 2..];
                continue;
            }
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(PoolConfigError::new(
                    path,
                    format!("unterminated \"${{\" in {text:?}"),
                ));
            };
            out.push_str(&self.variable(after[..end].trim(), path)?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn variable(&self, spec: &str, path: &str) -> Result<String, PoolConfigError> {
        let workspace = self.context.workspace_folder.as_deref();
        match (spec, workspace) {
            ("workspaceFolder", Some(w)) => return Ok(w.display().to_string()),
            ("workspaceFolderBasename", Some(w)) => {
                return Ok(w
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default())
            }
            ("userHome", _) => {
                return (self.lookup)("HOME")
                    .ok_or_else(|| PoolConfigError::new(path, "\"${userHome}\": HOME is not set"))
            }
            ("pathSeparator", _) => return Ok("/".into()),
            _ => {}
        }
        if spec.starts_with("input:") || spec.starts_with("workspaceFolder") {
            let why = if spec.starts_with("input:") {
                "is a value VS Code prompts for"
            } else {
                "is only known for a file in a project's .vscode/ or .cursor/ folder"
            };
            return Err(PoolConfigError::new(
                path,
                format!("\"${{{spec}}}\" is a VS Code variable that {why}; this reader cannot resolve it: set an environment variable and write \"${{env:NAME}}\""),
            ));
        }
        let spec = spec.strip_prefix("env:").unwrap_or(spec);
        let (var, default) = match spec.split_once(":-") {
            Some((var, default)) => (var.trim(), Some(default)),
            None => (spec, None),
        };
        if var.is_empty() {
            return Err(PoolConfigError::new(path, "empty variable name in \"${}\""));
        }
        match ((self.lookup)(var), default) {
            (Some(v), Some(default)) if v.is_empty() => Ok(default.to_owned()),
            (Some(v), _) => Ok(v),
            (None, Some(default)) => Ok(default.to_owned()),
            (None, None) => Err(PoolConfigError::new(
                path,
                format!("environment variable {var} is not set"),
            )),
        }
    }
}
