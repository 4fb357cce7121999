//! The manual cannot drift from the parser. `docs/cli.md` is every
//! command's `--help` as this binary renders it (rewrite it with
//! `UPDATE_DOCS=1 cargo test -p milvus-backup --bin milvus-backup docs_tests`),
//! and every `milvus-backup …` command line in a code block of `README.md`
//! or `docs/` parses with this binary's own parser.

use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};

use crate::Cli;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Help is rendered unwrapped (0: as written) whatever the terminal, so the
/// file is the same on every machine and the examples stay one line each.
const WIDTH: usize = 0;

/// `docs/cli.md`: an index, then each command's long help, parents first.
fn cli_reference() -> String {
    let mut root = Cli::command().term_width(WIDTH).max_term_width(WIDTH);
    root.build();
    let mut index = String::new();
    let mut pages = String::new();
    render(&mut root, "", &mut index, &mut pages);
    format!(
        "# CLI reference\n\n\
         Generated from the parser `milvus-backup` itself uses, by `crates/cli/src/docs_tests.rs`;\n\
         do not edit by hand. After changing a flag or a help text, rewrite it with\n\
         `UPDATE_DOCS=1 cargo test -p milvus-backup --bin milvus-backup docs_tests`.\n\
         The same text is `milvus-backup <command> --help`, and `milvus-backup man DIR` writes it\n\
         as man pages.\n\n{index}\n{pages}"
    )
}

fn render(cmd: &mut clap::Command, parent: &str, index: &mut String, pages: &mut String) {
    let path = if parent.is_empty() {
        cmd.get_name().to_string()
    } else {
        format!("{parent} {}", cmd.get_name())
    };
    let fragment = path.replace(' ', "-");
    let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
    let depth = path.matches(' ').count();
    index.push_str(&format!(
        "{}- [`{path}`](#{fragment}){}\n",
        "  ".repeat(depth),
        if about.is_empty() {
            String::new()
        } else {
            format!(": {about}")
        }
    ));
    let help = cmd.render_long_help().to_string();
    let help: Vec<&str> = help.lines().map(str::trim_end).collect();
    pages.push_str(&format!(
        "## {path}\n\n```text\n{}\n```\n\n",
        help.join("\n").trim_end()
    ));
    for sub in cmd.get_subcommands_mut() {
        if sub.get_name() != "help" {
            render(sub, &path, index, pages);
        }
    }
}

#[test]
fn cli_reference_matches_the_parser() {
    milvus_backup_testkit::generated::assert_file_is_generated(
        &repo_root().join("docs/cli.md"),
        &cli_reference(),
        "UPDATE_DOCS=1 cargo test -p milvus-backup --bin milvus-backup docs_tests",
    );
}

/// One documented command line: where it is and its words.
#[derive(Debug)]
struct DocumentedCommand {
    file: String,
    line: usize,
    words: Vec<String>,
}

/// The Markdown files of the manual: README.md and everything in docs/.
fn manual_files() -> Vec<PathBuf> {
    let root = repo_root();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// Code blocks that hold shell lines (not YAML, JSON, Python, output).
fn is_shell_block(lang: &str) -> bool {
    matches!(lang, "" | "sh" | "bash" | "shell" | "console")
}

/// Every `milvus-backup …` line in the shell code blocks of `text`, and in
/// the `Examples:` of help text (`text` blocks, as in docs/cli.md). In a
/// block with `$ ` prompts only the prompted lines are commands (the rest
/// is output). Continued lines (`\`) are joined.
fn documented_commands(file: &str, text: &str) -> Vec<DocumentedCommand> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(lang) = lines[i].trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let start = i + 1;
        let end = (start..lines.len())
            .find(|&j| lines[j].trim_start().starts_with("```"))
            .unwrap_or(lines.len());
        i = end + 1;
        let help_text = lang.trim() == "text";
        if !is_shell_block(lang.trim()) && !help_text {
            continue;
        }
        let block = &lines[start..end];
        let prompted = block.iter().any(|l| l.trim_start().starts_with("$ "));
        let mut in_examples = false;
        let mut j = 0;
        while j < block.len() {
            let first = j;
            let mut line = block[j].trim().to_string();
            while line.ends_with('\\') && j + 1 < block.len() {
                line.pop();
                j += 1;
                line.push(' ');
                line.push_str(block[j].trim());
            }
            j += 1;
            if help_text {
                // Help text: only its `Examples:` lines, up to a blank line.
                if line.starts_with("Example") && line.ends_with(':') {
                    in_examples = true;
                    continue;
                }
                in_examples &= !line.is_empty();
                if !in_examples {
                    continue;
                }
            }
            let line = match line.strip_prefix("$ ") {
                Some(l) => l.to_string(),
                None if prompted => continue,
                None => line,
            };
            if let Some(words) = command_words(&line) {
                found.push(DocumentedCommand {
                    file: file.to_string(),
                    line: start + first + 1,
                    words,
                });
            }
        }
    }
    found
}

/// The words of `line` when it runs `milvus-backup` (after any `VAR=value`
/// assignments), up to a comment, pipe, redirection or `&&`; quotes are
/// removed as the shell would.
fn command_words(line: &str) -> Option<Vec<String>> {
    let words = shell_words(line)?;
    let mut words = words
        .into_iter()
        .skip_while(|w| is_assignment(w))
        .peekable();
    if words.peek().map(String::as_str) != Some("milvus-backup") {
        return None;
    }
    Some(
        words
            .take_while(|w| {
                !matches!(w.as_str(), "|" | "||" | "&&" | ";" | "&")
                    && !w.starts_with('>')
                    && !w.starts_with('<')
                    && !w.starts_with("2>")
            })
            .collect(),
    )
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Splits like a POSIX shell without expanding anything: quotes group and
/// are removed, `#` at the start of a word ends the line. None when a
/// quote is left open.
fn shell_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => word.push(chars.next()?),
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next().unwrap_or('\\'));
            }
            '#' if !in_word => break,
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

#[test]
fn every_documented_command_line_parses() {
    let root = repo_root();
    let mut commands = Vec::new();
    for path in manual_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        commands.extend(documented_commands(&name, &text));
    }
    let failures: Vec<String> = commands
        .iter()
        .filter_map(|c| match Cli::try_parse_from(&c.words) {
            Ok(_) => None,
            Err(e)
                if matches!(
                    e.kind(),
                    clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
                ) =>
            {
                None
            }
            Err(e) => Some(format!(
                "{}:{}: `{}`: {}",
                c.file,
                c.line,
                c.words.join(" "),
                e.to_string().lines().next().unwrap_or_default()
            )),
        })
        .collect();
    let per_file = |f: &str| commands.iter().filter(|c| c.file == f).count();
    eprintln!(
        "parsed {} documented command lines ({} in README.md, {} in docs/cli.md, {} in the rest of docs/)",
        commands.len(),
        per_file("README.md"),
        per_file("docs/cli.md"),
        commands.len() - per_file("README.md") - per_file("docs/cli.md"),
    );
    assert!(
        failures.is_empty(),
        "{} documented command line(s) do not parse:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The manual shows well over a hundred; finding few means the
    // extraction broke, not that the manual is sound.
    assert!(
        commands.len() >= 100,
        "found only {} command lines",
        commands.len()
    );
}

#[test]
fn command_lines_are_cut_where_the_shell_would() {
    let words = |l: &str| command_words(l).map(|w| w.join(" "));
    assert_eq!(
        words("MILVUS_BACKUP_PASSWORD=old milvus-backup key passwd   # asks twice").as_deref(),
        Some("milvus-backup key passwd")
    );
    assert_eq!(
        words("milvus-backup keygen > backup-key.txt && chmod 600 backup-key.txt").as_deref(),
        Some("milvus-backup keygen")
    );
    assert_eq!(
        words("milvus-backup create --filter 'db1.*,default.docs'").as_deref(),
        Some("milvus-backup create --filter db1.*,default.docs")
    );
    assert_eq!(words("curl $B/list"), None);
    let found = documented_commands(
        "x.md",
        "```\n$ milvus-backup check\nmilvus-backup output line\n```\n```yaml\nmilvus-backup: x\n```\n",
    );
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].line, 2);
    let help = "```text\nUsage: milvus-backup check\n\nExamples:\n  milvus-backup list\n  milvus-backup get -n x\n\nmilvus-backup is\n```\n";
    let found = documented_commands("cli.md", help);
    assert_eq!(found.len(), 2, "{found:?}");
    // A line the parser refuses is reported, not skipped.
    assert!(Cli::try_parse_from(["milvus-backup", "create", "--no-such-flag"]).is_err());
}
