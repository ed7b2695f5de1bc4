//! The docs and the code must not drift: every relative link and `#anchor` in README.md,
//! CONTRIBUTING.md and docs/ resolves; every `cheetah <command>` they show exists in
//! `cheetah --help`, and every command is shown; every key in a TOML block they show is
//! accepted by the config parser; and the core's imports follow the layers the architecture
//! page lists.

mod layers;
mod markdown;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use markdown::Page;

/// The workspace's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate is in the workspace").to_path_buf()
}

/// README.md, CONTRIBUTING.md and every page of docs/.
fn pages() -> Vec<Page> {
    let root = root();
    let mut paths = vec![root.join("README.md"), root.join("CONTRIBUTING.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("a docs entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths.iter().map(|p| Page::read(p)).collect()
}

#[test]
fn every_link_and_anchor_resolves() {
    let pages = pages();
    let mut broken = Vec::new();
    for page in &pages {
        for link in page.links() {
            if let Err(why) = markdown::resolve(&page.path, &link) {
                broken.push(format!("{}:{}: ({}) {why}", page.name(), link.line, link.target));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(pages.iter().any(|p| p.name() == "docs/architecture.md"), "the architecture page exists");
}

#[test]
fn every_page_opens_with_what_its_reader_will_be_able_to_do() {
    for page in pages().iter().filter(|p| p.name().starts_with("docs/") || p.name() == "CONTRIBUTING.md") {
        let opening = page.text.lines().skip(1).find(|l| !l.trim().is_empty()).unwrap_or_default();
        assert!(opening.starts_with("After this page you can"), "{} opens with {opening:?}", page.name());
    }
}

#[test]
fn the_readme_is_a_quickstart_with_the_two_commands_at_its_top() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let lines = readme.lines().count();
    assert!(lines <= 250, "README.md has {lines} lines; the reference belongs in docs/");
    let top: String = readme.lines().take(6).collect::<Vec<_>>().join("\n");
    assert!(top.contains("make demo") && top.contains("make test"), "the two commands open the README:\n{top}");
}

/// The subcommands `cheetah --help` lists.
fn subcommands() -> BTreeSet<String> {
    let binary = cheetah_binary();
    let output = std::process::Command::new(&binary).arg("--help").output().expect("run cheetah --help");
    assert!(output.status.success(), "cheetah --help failed");
    let help = String::from_utf8(output.stdout).expect("UTF-8 help");
    let commands: BTreeSet<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect();
    assert!(commands.contains("update") && commands.contains("get"), "parsed no commands from:\n{help}");
    commands
}

/// The `cheetah` binary beside this test's own target directory.
fn cheetah_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test path");
    let binary = exe.parent().and_then(Path::parent).expect("target dir").join("cheetah");
    assert!(binary.is_file(), "{} is missing: run the tests with `cargo test --workspace`", binary.display());
    binary
}

#[test]
fn every_command_shown_exists_and_every_command_is_shown() {
    let known = subcommands();
    let mut unknown = Vec::new();
    let mut shown = BTreeSet::new();
    for page in pages() {
        for (line, command) in page.commands() {
            if known.contains(&command) {
                shown.insert(command);
            } else {
                unknown.push(format!("{}:{line}: `cheetah {command}`", page.name()));
            }
        }
    }
    assert!(unknown.is_empty(), "commands the docs show that `cheetah --help` does not list:\n{}", unknown.join("\n"));
    let missing: Vec<&String> = known.difference(&shown).collect();
    assert!(missing.is_empty(), "commands no page shows: {missing:?}");
}

#[test]
fn every_config_key_shown_is_accepted_by_the_parser() {
    let mut checked = 0;
    for page in pages() {
        for block in page.code_blocks().into_iter().filter(|b| b.language == "toml") {
            let config = markdown::completed_config(&block.text)
                .unwrap_or_else(|e| panic!("{}:{}: the TOML block does not parse: {e}", page.name(), block.line));
            let parsed = cheetah_core::Config::parse(&root().join("docs-check.toml"), &config);
            if let Err(e) = parsed {
                panic!("{}:{}: the parser refuses this block: {e}\n{}", page.name(), block.line, block.text);
            }
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} TOML blocks were found");
    let example = std::fs::read_to_string(root().join("config/example.toml")).expect("config/example.toml");
    cheetah_core::Config::parse(&root().join("config/example.toml"), &example).expect("the example config parses");
}

#[test]
fn the_core_imports_only_lower_layers() {
    let architecture = std::fs::read_to_string(root().join("docs/architecture.md")).expect("architecture page");
    let order = layers::order(&architecture);
    assert!(order.len() >= 12, "the layer table lists {order:?}");
    let upward = layers::upward_imports(&root().join("cheetah-core/src"), &order);
    assert!(upward.is_empty(), "lower layers import higher ones:\n{}", upward.join("\n"));
}
