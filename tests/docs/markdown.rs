//! Just enough Markdown for the checks: fenced blocks, inline code spans, links, headings and
//! their GitHub anchors.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A Markdown file.
pub struct Page {
    pub path: PathBuf,
    pub text: String,
}

/// A piece of text and the line it starts on.
type Numbered = (usize, String);

/// A link's target and the line it is on.
pub struct Link {
    pub line: usize,
    pub target: String,
}

/// A fenced code block.
pub struct Block {
    pub language: String,
    pub text: String,
    /// The line of its opening fence.
    pub line: usize,
}

impl Page {
    pub fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self { path: path.to_path_buf(), text }
    }

    /// The path from the workspace's root.
    pub fn name(&self) -> String {
        self.path.strip_prefix(super::root()).unwrap_or(&self.path).display().to_string()
    }

    /// Every fenced block.
    pub fn code_blocks(&self) -> Vec<Block> {
        let mut blocks = Vec::new();
        let mut open: Option<Block> = None;
        for (i, line) in self.text.lines().enumerate() {
            let fence = line.trim_start().strip_prefix("```");
            match (&mut open, fence) {
                (None, Some(language)) => {
                    open = Some(Block { language: language.trim().to_string(), text: String::new(), line: i + 1 })
                }
                (Some(_), Some(_)) => blocks.push(open.take().expect("open")),
                (Some(block), None) => {
                    block.text.push_str(line);
                    block.text.push('\n');
                }
                (None, None) => {}
            }
        }
        blocks
    }

    /// The text outside fenced blocks, with the line each of its lines is on.
    fn prose(&self) -> Vec<(usize, &str)> {
        let mut inside = false;
        let mut lines = Vec::new();
        for (i, line) in self.text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                inside = !inside;
            } else if !inside {
                lines.push((i + 1, line));
            }
        }
        lines
    }

    /// The prose's inline code spans (which may wrap over lines) and the text between them.
    fn spans(&self) -> (Vec<Numbered>, Vec<Numbered>) {
        let (mut code, mut text) = (Vec::new(), Vec::new());
        let mut in_code: Option<(usize, String)> = None;
        for (line, content) in self.prose() {
            // A blank line ends a paragraph, and any span left open in it.
            if content.trim().is_empty() {
                in_code = None;
            }
            let mut plain = String::new();
            for c in content.chars() {
                match (&mut in_code, c) {
                    (None, '`') => in_code = Some((line, String::new())),
                    (Some(_), '`') => code.push(in_code.take().expect("open span")),
                    (Some((_, span)), c) => span.push(c),
                    (None, c) => plain.push(c),
                }
            }
            if let Some((_, span)) = &mut in_code {
                span.push(' ');
            }
            text.push((line, plain));
        }
        (code, text)
    }

    /// Every link outside code.
    pub fn links(&self) -> Vec<Link> {
        let (_, text) = self.spans();
        let mut links = Vec::new();
        for (line, content) in text {
            let mut rest = content.as_str();
            while let Some(at) = rest.find("](") {
                let after = &rest[at + 2..];
                let Some(end) = after.find(')') else { break };
                links.push(Link { line, target: after[..end].trim().to_string() });
                rest = &after[end..];
            }
        }
        links
    }

    /// Each `cheetah <command>` shown: in inline code, and in shell blocks.
    pub fn commands(&self) -> Vec<(usize, String)> {
        let (code, _) = self.spans();
        let mut shown: Vec<(usize, String)> =
            code.iter().flat_map(|(line, span)| commands_in(span).into_iter().map(move |c| (*line, c))).collect();
        for block in self.code_blocks().iter().filter(|b| matches!(b.language.as_str(), "sh" | "bash" | "text" | "")) {
            for (i, line) in block.text.lines().enumerate() {
                shown.extend(commands_in(line).into_iter().map(|c| (block.line + 1 + i, c)));
            }
        }
        shown
    }

    /// The anchors of its headings, as GitHub makes them.
    fn anchors(&self) -> BTreeSet<String> {
        let mut anchors = BTreeSet::new();
        for (_, line) in self.prose() {
            let Some(title) = line.strip_prefix('#').map(|t| t.trim_start_matches('#')) else { continue };
            let base = slug(title);
            let mut anchor = base.clone();
            let mut n = 0;
            while !anchors.insert(anchor.clone()) {
                n += 1;
                anchor = format!("{base}-{n}");
            }
        }
        anchors
    }
}

/// The commands in one line of shell or one code span: `cheetah` as a word, then its options
/// (`--config PATH`), then the command.
fn commands_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let words: Vec<&str> = text.split_whitespace().collect();
    for (i, word) in words.iter().enumerate() {
        let word = word.trim_start_matches(['(', '"', '\'']);
        if word != "cheetah" {
            continue;
        }
        let mut j = i + 1;
        while j < words.len() && words[j].starts_with('-') {
            j += if words[j] == "--config" { 2 } else { 1 };
        }
        let Some(command) = words.get(j) else { continue };
        let command = command.trim_end_matches([',', '.', ';', ':', ')', '"', '\'']);
        if !command.is_empty() && command.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
            found.push(command.to_string());
        }
    }
    found
}

/// GitHub's anchor of a heading: lowercase, punctuation dropped, spaces as hyphens.
fn slug(title: &str) -> String {
    let text = title.trim().replace('`', "");
    // A link in a heading anchors on its text.
    let text = text.split("](").map(|part| part.rsplit(')').next().unwrap_or(part)).collect::<Vec<_>>().join("");
    text.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Checks that `link`, written in the page at `from`, names a file that exists and, with a
/// `#anchor`, a heading of it.
pub fn resolve(from: &Path, link: &Link) -> Result<(), String> {
    let target = link.target.split_whitespace().next().unwrap_or_default();
    if target.contains("://") || target.starts_with("mailto:") {
        return Ok(());
    }
    let (file, anchor) = target.split_once('#').map_or((target, None), |(f, a)| (f, Some(a)));
    let path = if file.is_empty() { from.to_path_buf() } else { from.parent().expect("a page's folder").join(file) };
    if !path.exists() {
        return Err(format!("{} does not exist", path.display()));
    }
    let Some(anchor) = anchor else { return Ok(()) };
    if path.extension().is_none_or(|e| e != "md") {
        return Err(format!("an anchor into {}, which is not Markdown", path.display()));
    }
    let anchors = Page::read(&path).anchors();
    if anchors.contains(anchor) {
        Ok(())
    } else {
        Err(format!("no heading of {} has the anchor #{anchor}; it has {anchors:?}", path.display()))
    }
}

/// A TOML block from the docs made into a whole config: `[store]` and `[source]` added when
/// it has none, and each `[[table]]` given the keys it leaves out as `# ...`, so the parser
/// judges exactly the keys the block shows.
pub fn completed_config(block: &str) -> Result<String, toml::de::Error> {
    use toml::Value;
    let shown: toml::Table = toml::from_str(block)?;
    let mut config: toml::Table =
        toml::from_str("[store]\npath = \"store\"\n\n[source]\nodbc = \"Driver={SQLite3};Database=/docs/check.db;\"\n")
            .expect("the base config parses");
    for (key, value) in shown {
        match (key.as_str(), value) {
            ("table", value) => {
                let tables = match value {
                    Value::Array(tables) => tables,
                    table => vec![table],
                };
                let completed = tables.into_iter().enumerate().map(|(i, table)| {
                    let mut base: toml::Table = toml::from_str(&format!(
                        "name = \"docs_table_{i}\"\ndate = \"d\"\nsymbol = \"s\"\nfields = [\"*\"]\nstart = \"2015-01-01\"\n"
                    ))
                    .expect("the base table parses");
                    if let Value::Table(shown) = table {
                        base.extend(shown);
                    }
                    Value::Table(base)
                });
                config.insert(key, Value::Array(completed.collect()));
            }
            (_, Value::Table(shown)) => match config.get_mut(&key) {
                Some(Value::Table(base)) => base.extend(shown),
                _ => {
                    config.insert(key, Value::Table(shown));
                }
            },
            (_, value) => {
                config.insert(key, value);
            }
        }
    }
    Ok(toml::to_string(&config).expect("a config serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_are_githubs() {
        assert_eq!(slug(" The core's layers"), "the-cores-layers");
        assert_eq!(slug(" With `pyarrow.flight` alone"), "with-pyarrowflight-alone");
        assert_eq!(slug(" 10,000 fields"), "10000-fields");
        assert_eq!(slug(" Remote reads: Arrow Flight"), "remote-reads-arrow-flight");
    }

    #[test]
    fn commands_are_the_word_after_cheetah_and_its_options() {
        assert_eq!(commands_in("cheetah --config x.toml update --source pg"), ["update"]);
        assert_eq!(commands_in("python -m cheetah status; cheetah get --out a.csv"), ["status", "get"]);
        assert!(commands_in("import cheetah").is_empty());
        assert!(commands_in("pip install dist/cheetah-0.1.0.whl; cheetah --version").is_empty());
        assert_eq!(commands_in("(cheetah serve)"), ["serve"]);
    }

    #[test]
    fn a_block_is_completed_and_a_wrong_key_stays_wrong() {
        let block = "[[table]]\nname = \"bar\"\n# ...\n\n[table.adjust]\nfactor = \"f\"\nfields = [\"close\"]\n";
        let config = completed_config(block).unwrap();
        assert!(cheetah_core::Config::parse(Path::new("c.toml"), &config).is_ok(), "{config}");
        let wrong = completed_config("[[table]]\nname = \"bar\"\nlookbak = 3\n").unwrap();
        let err = cheetah_core::Config::parse(Path::new("c.toml"), &wrong).unwrap_err().to_string();
        assert!(err.contains("lookbak"), "{err}");
        let flight = completed_config("[flight]\nlisten = \"127.0.0.1:1\"\ntokn = \"x\"\n").unwrap();
        assert!(cheetah_core::Config::parse(Path::new("c.toml"), &flight).is_err());
    }

    #[test]
    fn links_skip_code_and_find_anchors() {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("p.md");
        std::fs::write(
            &page,
            "# Top\n\nSee [a](#top) and `[b](#nowhere)`.\n\n```\n[c](missing.md)\n```\n\n## Next one\n[d](#next-one) [e](#gone)\n",
        )
        .unwrap();
        let page = Page::read(&page);
        let links = page.links();
        let targets: Vec<&str> = links.iter().map(|l| l.target.as_str()).collect();
        assert_eq!(targets, ["#top", "#next-one", "#gone"]);
        let resolved: Vec<bool> = links.iter().map(|l| resolve(&page.path, l).is_ok()).collect();
        assert_eq!(resolved, [true, true, false]);
    }
}
