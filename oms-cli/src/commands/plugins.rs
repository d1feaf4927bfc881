//! `oms-cli plugins`: every registered plugin by kind, with its settings.

use std::process::ExitCode;

/// Prints one line per plugin (kind, name, description), then the keys of
/// its settings table with their defaults, indented:
///
/// ```text
/// audit sink         jsonl     audit events as JSON lines appended to a file ...
///                              [audit.jsonl]
///                              fsync = "batch"
/// ```
pub(crate) fn run() -> anyhow::Result<ExitCode> {
    let plugins = oms_core::plugin::all();
    let width = plugins.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let indent = " ".repeat(18 + 1 + width + 2);
    for p in plugins {
        println!(
            "{:<18} {:<width$}  {}",
            p.kind.to_string(),
            p.name,
            p.description
        );
        for line in settings_lines(p.table.as_deref(), &p.settings) {
            println!("{indent}{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `[table]` then `key = default` per setting, TOML-like; a key without a
/// default (JSON `null`) is shown commented out.
fn settings_lines(table: Option<&str>, settings: &serde_json::Value) -> Vec<String> {
    let serde_json::Value::Object(map) = settings else {
        return Vec::new();
    };
    let mut lines = Vec::with_capacity(map.len() + 1);
    if let Some(table) = table {
        lines.push(format!("[{table}]"));
    }
    for (key, value) in map {
        lines.push(match value {
            serde_json::Value::Null => format!("# {key} = (no default)"),
            value => format!("{key} = {value}"),
        });
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::settings_lines;

    #[test]
    fn settings_render_as_toml_like_lines() {
        let lines = settings_lines(
            Some("audit.x"),
            &serde_json::json!({"path": "a.log", "n": 3, "opt": null}),
        );
        assert_eq!(
            lines,
            [
                "[audit.x]",
                "n = 3",
                "# opt = (no default)",
                "path = \"a.log\""
            ]
        );
        assert!(settings_lines(None, &serde_json::Value::Null).is_empty());
    }
}
