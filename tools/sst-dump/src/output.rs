//! What every command returns: a report that renders as text or JSON, and
//! says whether everything checked out. The exit status follows from it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use serde::Serialize;

/// Something wrong found in a file: where (when known) and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The damaged file, when a report covers several (directory mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Byte offset in that file where the damage starts.
    pub offset: Option<u64>,
    /// What was wrong, in words.
    pub reason: String,
}

impl Problem {
    pub fn at(offset: u64, reason: impl Into<String>) -> Problem {
        Problem {
            file: None,
            offset: Some(offset),
            reason: reason.into(),
        }
    }

    pub fn nowhere(reason: impl Into<String>) -> Problem {
        Problem {
            file: None,
            offset: None,
            reason: reason.into(),
        }
    }

    pub fn in_file(mut self, file: impl Into<String>) -> Problem {
        self.file = Some(file.into());
        self
    }

    /// From a table reader error (corruption names its offset).
    pub fn from_table(e: &strata_sstable::Error) -> Problem {
        match e {
            strata_sstable::Error::Corruption { offset, reason } => Problem::at(*offset, reason),
            other => Problem::nowhere(other.to_string()),
        }
    }

    /// From an engine error (corruption names file and offset).
    pub fn from_engine(e: &strata::Error) -> Problem {
        match e {
            strata::Error::Corruption {
                file,
                offset,
                reason,
            } => Problem::at(*offset, reason).in_file(file.display().to_string()),
            other => Problem::nowhere(other.to_string()),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        match self.offset {
            Some(offset) => write!(f, "corruption at offset {offset}: {}", self.reason),
            None => write!(f, "{}", self.reason),
        }
    }
}

/// A command's result.
pub trait Report: Serialize {
    /// True when nothing wrong was found.
    fn ok(&self) -> bool;
    /// The human-readable form, appended to `out`.
    fn text(&self, out: &mut String);
}

/// Writes `problems` one per line.
pub fn problems_text(out: &mut String, problems: &[Problem]) {
    for p in problems {
        let _ = writeln!(out, "{p}");
    }
}

/// How the process ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Everything checked out: 0.
    Ok,
    /// Corruption (or a file that is no strata file) was found: 1.
    Corrupt,
    /// Bad flags, a missing file, a command that does not apply: 2.
    Usage,
}

impl Status {
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(match self {
            Status::Ok => 0,
            Status::Corrupt => 1,
            Status::Usage => 2,
        })
    }
}

/// A finished command: its text, its JSON object, its status.
pub struct Outcome {
    pub text: String,
    pub json: serde_json::Map<String, serde_json::Value>,
    pub status: Status,
}

impl Outcome {
    /// Renders `report` both ways; its JSON fields go at the top level.
    pub fn of<R: Report>(report: &R) -> Outcome {
        let mut text = String::new();
        report.text(&mut text);
        let json = match serde_json::to_value(report) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(other) => {
                let mut map = serde_json::Map::new();
                map.insert("report".into(), other);
                map
            }
            Err(e) => {
                let mut map = serde_json::Map::new();
                map.insert("error".into(), e.to_string().into());
                map
            }
        };
        Outcome {
            text,
            json,
            status: if report.ok() {
                Status::Ok
            } else {
                Status::Corrupt
            },
        }
    }

    /// Adds another report's text below and its JSON under `key`; the
    /// status is the worse of the two.
    pub fn append<R: Report>(&mut self, key: &str, report: &R) {
        let other = Outcome::of(report);
        self.text.push_str(&other.text);
        self.json
            .insert(key.to_string(), serde_json::Value::Object(other.json));
        if other.status != Status::Ok && self.status == Status::Ok {
            self.status = other.status;
        }
    }
}

/// Writes `text` to stdout. A closed pipe (`sst-dump ... | head`) is not an
/// error worth a panic or a message: the reader has seen enough.
pub fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// A JSON value as pretty text with a final newline.
pub fn json_text(value: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(value)
        .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()));
    s.push('\n');
    s
}
