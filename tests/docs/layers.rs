//! The core's layers as docs/architecture.md lists them, and the imports that go against them.

use std::path::Path;

/// The layers of the table under "The core's layers", bottom first: each row's modules (a row
/// may name several, which share a level).
pub fn order(architecture: &str) -> Vec<Vec<String>> {
    architecture
        .lines()
        .skip_while(|l| !l.starts_with("## The core's layers"))
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with("| `"))
        .map(|row| {
            let cell = row.trim_start_matches('|').split('|').next().unwrap_or_default();
            cell.split(',')
                .map(|name| name.trim().trim_matches('`').trim_end_matches('/').trim_end_matches(".rs").to_string())
                .collect()
        })
        .collect()
}

/// Each `crate::` reference in the core's code (tests and comments aside) from a module to one
/// of a higher layer, as `file: module -> module`.
pub fn upward_imports(src: &Path, order: &[Vec<String>]) -> Vec<String> {
    let level = |module: &str| order.iter().position(|row| row.iter().any(|m| m == module));
    let mut upward = Vec::new();
    for file in rust_files(src) {
        let relative = file.strip_prefix(src).expect("under src");
        let module = relative.components().next().expect("a path").as_os_str().to_string_lossy();
        let module = module.trim_end_matches(".rs").to_string();
        if module == "lib" || relative.file_name().is_some_and(|f| f == "tests.rs" || f == "testing.rs") {
            continue;
        }
        let own = level(&module).unwrap_or_else(|| panic!("{module} is not in the architecture page's layer table"));
        let text = std::fs::read_to_string(&file).expect("a source file");
        let code: String = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or_default()
            .lines()
            .map(|l| if l.trim_start().starts_with("//") { "" } else { l })
            .collect::<Vec<_>>()
            .join("\n");
        for (line, target) in referenced_modules(&code) {
            let Some(theirs) = level(&target) else { continue };
            if theirs > own {
                upward.push(format!("{}:{line}: {module} -> {target}", relative.display()));
            }
        }
    }
    upward
}

/// The top modules `code` names as `crate::module`, or inside `use crate::{a, b::{c, d}}`, each
/// with its line.
fn referenced_modules(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = code[at..].find("crate::") {
        at += offset + "crate::".len();
        let line = code[..at].matches('\n').count() + 1;
        let rest = &code[at..];
        if let Some(group) = rest.strip_prefix('{') {
            // The group's top-level items, up to its matching brace.
            let (mut depth, mut item) = (1, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => break,
                    '}' => depth -= 1,
                    ',' if depth == 1 => {
                        found.push((line, head(&item)));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.push((line, head(&item)));
        } else {
            found.push((line, head(rest)));
        }
    }
    found.retain(|(_, m)| !m.is_empty());
    found
}

/// The first path segment of `item`.
fn head(item: &str) -> String {
    item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a source folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_in_paths_and_groups() {
        let code = "use crate::store::Store;\nuse crate::{\n    error::{A, B},\n    view::View,\n};\nfn f() { crate::types::date_of(1); }";
        let found: Vec<(usize, String)> = referenced_modules(code);
        let names: Vec<&str> = found.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(names, ["store", "error", "view", "types"]);
        assert_eq!(found[3].0, 6);
    }

    #[test]
    fn the_table_gives_the_order() {
        let page = "## The core's layers\n\n| layer | job |\n|---|---|\n| `types.rs` | a |\n| `store/` | b |\n| `status.rs`, `verify.rs` | c |\n\n## Next\n| `x` | y |\n";
        assert_eq!(order(page), [vec!["types"], vec!["store"], vec!["status", "verify"]]);
    }
}
