//! Reading a doc file's fenced blocks: which are ```sh blocks, their
//! attributes, and a transcript's commands with the output each expects.

use std::collections::BTreeMap;

/// What a service a ```sh block needs (`needs="..."`) the harness starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A server with a management key: `API_URL` points at it,
    /// `JWT_AUTH_KEY` holds the key and `FERRITE_TOKEN` a token signed with it.
    Key,
    /// The file's PostgreSQL database, fresh and empty at its first block:
    /// `DB_URL` holds its URL.
    Postgres,
    /// The file's Redis: `MQ_URL` holds a queue URL of it.
    Redis,
}

/// One ```sh block of a doc file.
#[derive(Debug)]
pub struct Block {
    /// The line of the opening fence (1-based), for failure messages.
    pub line: usize,
    /// `skip="reason"`: not run; the reason names the test that covers it.
    pub skip: Option<String>,
    /// `server` or `server="URL"`: the block starts a server that keeps
    /// running, at a free port of the harness's or at the URL given.
    pub server: Option<Option<String>>,
    /// `repo`: run in the repository's root instead of the file's temp dir.
    pub repo: bool,
    pub needs: Vec<Need>,
    /// The block's lines, without the fence's indentation.
    pub body: Vec<String>,
}

/// One `$ ` command of a transcript and the output shown under it.
#[derive(Debug)]
pub struct Step {
    /// The line of the `$ ` (1-based, in the doc file).
    pub line: usize,
    /// The command, continuation lines included.
    pub command: String,
    pub expected: Vec<String>,
}

/// Every ```sh block of `text`, in order. Every fence must name its
/// language: an untagged block of commands would escape the harness.
pub fn sh_blocks(text: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let trimmed = line.trim_start();
        let Some(info) = trimmed.strip_prefix("```") else {
            continue;
        };
        let indent = line.len() - trimmed.len();
        let at = index + 1;
        let mut body = Vec::new();
        let mut closed = false;
        for (_, inner) in lines.by_ref() {
            if inner.trim() == "```" {
                closed = true;
                break;
            }
            let cut = inner.len() - inner.trim_start().len();
            body.push(inner[cut.min(indent)..].to_string());
        }
        if !closed {
            return Err(format!("line {at}: the block is never closed"));
        }
        let (tag, attributes) = info.split_once(' ').unwrap_or((info, ""));
        match tag {
            "" => {
                return Err(format!(
                    "line {at}: a fence without a language: tag it sh (commands), \
                     text (output), json, ..."
                ))
            }
            "bash" | "shell" | "console" | "shell-session" => {
                return Err(format!(
                    "line {at}: commands are tagged sh (found {tag}), so that they are run"
                ))
            }
            "sh" => blocks.push(block(at, attributes, body)?),
            _ => {}
        }
    }
    Ok(blocks)
}

fn block(line: usize, attributes: &str, body: Vec<String>) -> Result<Block, String> {
    let attributes = parse_attributes(attributes).map_err(|e| format!("line {line}: {e}"))?;
    let mut block = Block {
        line,
        skip: None,
        server: None,
        repo: false,
        needs: Vec::new(),
        body,
    };
    for (key, value) in attributes {
        match (key.as_str(), value) {
            ("skip", Some(reason)) if !reason.trim().is_empty() => block.skip = Some(reason),
            ("server", url) => block.server = Some(url),
            ("repo", None) => block.repo = true,
            ("needs", Some(list)) => {
                for need in list.split(',').map(str::trim) {
                    block.needs.push(match need {
                        "key" => Need::Key,
                        "postgres" => Need::Postgres,
                        "redis" => Need::Redis,
                        other => {
                            return Err(format!(
                                "line {line}: needs=\"{other}\": the harness knows key, postgres, redis"
                            ))
                        }
                    });
                }
            }
            (key, _) => {
                return Err(format!(
                    "line {line}: attribute {key} is not known or lacks its value \
                     (skip=\"reason naming the test\", server, server=\"URL\", repo, needs=\"key,postgres,redis\")"
                ))
            }
        }
    }
    if block.server.is_some() && block.skip.is_some() {
        return Err(format!("line {line}: a skipped block starts no server"));
    }
    Ok(block)
}

/// `key="value"` and bare `key` words, as after a fence's language.
fn parse_attributes(text: &str) -> Result<BTreeMap<String, Option<String>>, String> {
    let mut found = BTreeMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let end = rest.find([' ', '=']).unwrap_or(rest.len());
        let key = &rest[..end];
        rest = &rest[end..];
        let value = match rest.strip_prefix("=\"") {
            Some(quoted) => {
                let close = quoted
                    .find('"')
                    .ok_or_else(|| format!("attribute {key}: the quote is never closed"))?;
                rest = &quoted[close + 1..];
                Some(quoted[..close].to_string())
            }
            None if rest.starts_with('=') => {
                return Err(format!("attribute {key}: quote its value (key=\"value\")"))
            }
            None => None,
        };
        if found.insert(key.to_string(), value).is_some() {
            return Err(format!("attribute {key} is given twice"));
        }
        rest = rest.trim_start();
    }
    Ok(found)
}

/// The block's `$ ` commands with their expected output, or `None` for a
/// plain script. Before the first `$ ` only blank lines may stand.
pub fn transcript(block: &Block) -> Result<Option<Vec<Step>>, String> {
    if !block.body.iter().any(|l| l.starts_with("$ ")) {
        return Ok(None);
    }
    let mut steps: Vec<Step> = Vec::new();
    let mut continued = false;
    for (offset, line) in block.body.iter().enumerate() {
        let at = block.line + 1 + offset;
        if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                line: at,
                command: command.to_string(),
                expected: Vec::new(),
            });
            continued = command.ends_with('\\');
        } else if let Some(step) = steps.last_mut() {
            if continued {
                step.command.push('\n');
                step.command.push_str(line);
                continued = line.ends_with('\\');
            } else {
                step.expected.push(line.clone());
            }
        } else if !line.trim().is_empty() {
            return Err(format!(
                "line {at}: a transcript starts with its first `$ ` command"
            ));
        }
    }
    Ok(Some(steps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_attributes_and_transcripts() {
        let text =
            "x\n```sh\nls\n```\n```text\nout\n```\n  ```sh skip=\"no: tests/a.rs\"\n  a\n  ```\n\
                    ```sh server needs=\"key,postgres\"\nferrite server\n```\n\
                    ```sh\n$ echo a \\\n  b\na b\n...\n$ true\n```\n";
        let blocks = sh_blocks(text).unwrap();
        assert_eq!(blocks.len(), 4);
        assert_eq!(
            (blocks[0].line, blocks[0].body.clone()),
            (2, vec!["ls".into()])
        );
        assert_eq!(blocks[1].skip.as_deref(), Some("no: tests/a.rs"));
        assert_eq!(blocks[1].body, ["a"]);
        assert_eq!(blocks[2].server, Some(None));
        assert_eq!(blocks[2].needs, [Need::Key, Need::Postgres]);
        let steps = transcript(&blocks[3]).unwrap().unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].command, "echo a \\\n  b");
        assert_eq!(steps[0].expected, ["a b", "..."]);
        assert_eq!(steps[1].line, 19);
        assert!(transcript(&blocks[0]).unwrap().is_none());
    }

    #[test]
    fn bad_fences_are_refused() {
        assert!(sh_blocks("```\nls\n```\n").unwrap_err().contains("line 1"));
        assert!(sh_blocks("```bash\nls\n```\n").is_err());
        assert!(sh_blocks("```sh skip=\"\"\nls\n```\n").is_err());
        assert!(sh_blocks("```sh skip=x\nls\n```\n").is_err());
        assert!(sh_blocks("```sh later\nls\n```\n").is_err());
        assert!(sh_blocks("```sh\nls\n").is_err());
    }
}
