//! Reading SQL scripts the way the `mariadb`/`mysql` command-line client does.
//!
//! Procedure files use the client's `DELIMITER` command so that a DBA can load them with the stock client. The
//! server itself rejects `DELIMITER` (error 1064), so the applier splits a file into statements here, honouring
//! quotes and comments exactly where the client does. The same scanner also computes a definition's
//! fingerprint: the text without comments and white space, which is what survives both the client (it strips
//! comments) and the server (it keeps the text as sent).

use md5::{Digest, Md5};

/// A script the scanner could not read to its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// A quote or block comment opened and never closed.
    #[error("unterminated {what} starting on line {line}")]
    Unterminated { what: &'static str, line: usize },
    /// A `DELIMITER` command without a delimiter after it.
    #[error("DELIMITER without a delimiter on line {line}")]
    EmptyDelimiter { line: usize },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Code,
    Quoted(u8),
    LineComment,
    BlockComment,
}

impl Mode {
    fn description(self) -> &'static str {
        match self {
            Mode::Quoted(b'`') => "quoted identifier",
            Mode::Quoted(_) => "string",
            Mode::BlockComment => "comment",
            Mode::Code | Mode::LineComment => "statement",
        }
    }
}

/// One step of the scanner: what `bytes[at]` starts, given the mode before it. Returns the new mode and how
/// many bytes the step consumed.
fn step(bytes: &[u8], at: usize, mode: Mode) -> (Mode, usize) {
    let here = bytes[at];
    let next = bytes.get(at + 1).copied();
    match mode {
        Mode::Code => match (here, next) {
            (b'\'' | b'"' | b'`', _) => (Mode::Quoted(here), 1),
            (b'#', _) => (Mode::LineComment, 1),
            // `--` starts a comment only when followed by white space (or the end), as in the client.
            (b'-', Some(b'-')) if bytes.get(at + 2).is_none_or(|c| c.is_ascii_whitespace()) => (Mode::LineComment, 2),
            // `/*! ... */` is executable in MySQL; keep it as code, as the client does.
            (b'/', Some(b'*')) if bytes.get(at + 2) != Some(&b'!') => (Mode::BlockComment, 2),
            _ => (Mode::Code, 1),
        },
        Mode::Quoted(quote) => match here {
            b'\\' if quote != b'`' => (mode, 2),
            c if c == quote => (Mode::Code, 1),
            _ => (mode, 1),
        },
        Mode::LineComment => (if here == b'\n' { Mode::Code } else { mode }, 1),
        Mode::BlockComment => match (here, next) {
            (b'*', Some(b'/')) => (Mode::Code, 2),
            _ => (mode, 1),
        },
    }
}

fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// If a `DELIMITER x` command starts at `at` (the first non-blank of a line), returns `x` and where its line
/// ends.
fn delimiter_command(text: &str, at: usize) -> Option<Result<(String, usize), ScriptError>> {
    let rest = text.get(at..)?;
    if !rest.get(..9)?.eq_ignore_ascii_case("delimiter") {
        return None;
    }
    let line_end = rest.find('\n').map_or(text.len(), |n| at + n + 1);
    let after_keyword = &text[at + 9..line_end];
    if !after_keyword.is_empty() && !after_keyword.starts_with([' ', '\t', '\r', '\n']) {
        return None; // an identifier that merely starts with "delimiter"
    }
    let argument = after_keyword.trim();
    match argument.split_whitespace().next() {
        Some(delimiter) => Some(Ok((delimiter.to_string(), line_end))),
        None => Some(Err(ScriptError::EmptyDelimiter { line: line_of(text, at) })),
    }
}

/// Splits a script into the statements the client would send, without their delimiters. Statements that hold
/// nothing but comments and white space are left out.
///
/// # Errors
/// [`ScriptError`] for an unterminated quote or comment, or an empty `DELIMITER` command.
pub fn split_statements(text: &str) -> Result<Vec<String>, ScriptError> {
    let bytes = text.as_bytes();
    let mut statements = Vec::new();
    let mut delimiter = String::from(";");
    let mut mode = Mode::Code;
    let mut mode_started = 0;
    let mut statement_start = 0;
    let mut at_line_start = true;
    let mut at = 0;
    let push = |statement: &str, statements: &mut Vec<String>| {
        if !fingerprint_text(statement).is_empty() {
            statements.push(statement.trim().to_string());
        }
    };
    while at < bytes.len() {
        if mode == Mode::Code {
            if at_line_start && !bytes[at].is_ascii_whitespace() {
                at_line_start = false;
                if let Some(command) = delimiter_command(text, at) {
                    let (new_delimiter, line_end) = command?;
                    push(&text[statement_start..at], &mut statements);
                    delimiter = new_delimiter;
                    statement_start = line_end;
                    at = line_end;
                    at_line_start = true;
                    continue;
                }
            }
            if bytes[at..].starts_with(delimiter.as_bytes()) {
                push(&text[statement_start..at], &mut statements);
                at += delimiter.len();
                statement_start = at;
                continue;
            }
        }
        let (next_mode, consumed) = step(bytes, at, mode);
        if next_mode != mode {
            mode_started = at;
        }
        if bytes[at] == b'\n' {
            at_line_start = true;
        }
        mode = next_mode;
        at += consumed;
    }
    if let Mode::Quoted(_) | Mode::BlockComment = mode {
        return Err(ScriptError::Unterminated { what: mode.description(), line: line_of(text, mode_started) });
    }
    push(&text[statement_start.min(text.len())..], &mut statements);
    Ok(statements)
}

/// The text with its comments removed (`/*! .. */` is code and stays).
pub fn strip_comments(text: &str) -> String {
    scan_code(text, true)
}

/// The text with comments and all white space outside quotes removed.
pub fn fingerprint_text(text: &str) -> String {
    scan_code(text, false)
}

fn scan_code(text: &str, keep_whitespace: bool) -> String {
    let bytes = text.as_bytes();
    let mut kept = Vec::with_capacity(bytes.len());
    let mut mode = Mode::Code;
    let mut at = 0;
    while at < bytes.len() {
        let (next_mode, consumed) = step(bytes, at, mode);
        let end = (at + consumed).min(bytes.len());
        let quoted = matches!(mode, Mode::Quoted(_));
        let code = mode == Mode::Code && next_mode != Mode::LineComment && next_mode != Mode::BlockComment;
        if quoted || (code && (keep_whitespace || !bytes[at].is_ascii_whitespace())) {
            kept.extend_from_slice(&bytes[at..end]);
        } else if keep_whitespace && next_mode == Mode::Code && mode == Mode::LineComment {
            kept.push(b'\n'); // a line comment ends its line
        }
        mode = next_mode;
        at = end;
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// A digest of a routine's definition as `SHOW CREATE PROCEDURE` prints it, insensitive to comments, white
/// space and the `DEFINER` clause (which names the host the definer connected from, not the routine).
pub fn definition_fingerprint(show_create: &str) -> String {
    let text = fingerprint_text(show_create);
    let without_definer = match text.strip_prefix("CREATEDEFINER=") {
        Some(rest) => {
            let routine_at = ["PROCEDURE", "FUNCTION"].iter().filter_map(|kind| rest.find(kind)).min();
            routine_at.map_or(text.clone(), |at| format!("CREATE{}", &rest[at..]))
        }
        None => text,
    };
    md5_hex(without_definer.as_bytes())
}

/// Lowercase hex MD5 of `bytes`.
pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_the_current_delimiter_only() {
        let script = "DROP PROCEDURE IF EXISTS p;\nDELIMITER $$\nCREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END $$\nDELIMITER ;\n";
        assert_eq!(
            split_statements(script).unwrap(),
            vec!["DROP PROCEDURE IF EXISTS p", "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END"]
        );
    }

    #[test]
    fn delimiters_inside_quotes_and_comments_do_not_split() {
        let script = "SELECT ';' -- a; comment\n, \"$$\" /* ; */ ;\n# only; a comment\n";
        assert_eq!(split_statements(script).unwrap(), vec!["SELECT ';' -- a; comment\n, \"$$\" /* ; */"]);
    }

    #[test]
    fn escaped_quote_does_not_end_a_string() {
        assert_eq!(split_statements(r"SELECT 'it\'s; fine'; SELECT 2").unwrap().len(), 2);
    }

    #[test]
    fn double_dash_without_space_is_an_operator() {
        assert_eq!(split_statements("SELECT 1--1; SELECT 2").unwrap(), vec!["SELECT 1--1", "SELECT 2"]);
    }

    #[test]
    fn unterminated_string_is_reported_with_its_line() {
        let error = split_statements("SELECT 1;\nSELECT 'oops;\n").unwrap_err();
        assert_eq!(error, ScriptError::Unterminated { what: "string", line: 2 });
    }

    #[test]
    fn fingerprint_ignores_comments_white_space_and_definer() {
        let file = "CREATE PROCEDURE `p`(IN a INT) -- why\nBEGIN\n  /* note */ SELECT 'a  b';\nEND";
        let shown = "CREATE DEFINER=`root`@`127.0.0.1` PROCEDURE `p`(IN a INT) \nBEGIN\n   SELECT 'a  b';\nEND";
        assert_eq!(definition_fingerprint(file), definition_fingerprint(shown));
        assert_ne!(definition_fingerprint(shown), definition_fingerprint(&shown.replace("'a  b'", "'a b'")));
    }
}
