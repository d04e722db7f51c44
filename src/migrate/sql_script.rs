//! Reading SQL scripts the way the `mariadb`/`mysql` command-line client does.
//!
//! Procedure files use the client's `DELIMITER` command so that a DBA can load them with the stock client. The
//! server itself rejects `DELIMITER` (error 1064), so the applier splits a file into statements here, honouring
//! quotes, comments and `DELIMITER` commands exactly where the client does. The same scanner also computes a
//! definition's fingerprint: the text without comments and white space, which is what survives both the client
//! (it strips comments) and the server (it keeps the text as sent).
//!
//! Whether a `DELIMITER` is a command is decided as MariaDB's client decides it (client/mysql.cc).
//! `read_and_execute()` reads the script line by line and asks `find_command()` about a line only while the
//! statement buffer is empty and the line does not continue a quote or a `/* */` comment: that is, on a line
//! that begins a statement, after nothing but white space and comments (`add_line()` adds neither to the
//! buffer). There a line is a `DELIMITER` command when its first word, up to a space or a tab, is `delimiter`
//! in any case, followed by nothing (an error) or by an argument `get_arg()` can read. Everywhere else the word
//! is SQL: a column or an alias named `delimiter` at the start of a line of a procedure body, or a line of a
//! multi-line string or comment. Where the client reads a script otherwise than the server would (its
//! backslash commands, a few comments), the applier refuses the file rather than guess.

use std::borrow::Cow;

use md5::{Digest, Md5};

/// The longest delimiter the client keeps: `char delimiter[16]` in client/mysql.cc.
const MAX_DELIMITER_LEN: usize = 15;

/// A script the scanner could not read to its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// A quote or block comment opened and never closed.
    #[error("unterminated {what} starting on line {line}")]
    Unterminated { what: &'static str, line: usize },
    /// A `DELIMITER` command without a delimiter after it.
    #[error("DELIMITER without a delimiter on line {line}")]
    EmptyDelimiter { line: usize },
    /// A `DELIMITER` line whose delimiter the client cannot read, refuses or cuts short.
    #[error("DELIMITER on line {line}: {why}")]
    InvalidDelimiter { line: usize, why: &'static str },
    /// A statement whose first word is `DELIMITER` on a line that began with other text: after an earlier
    /// statement or a comment on the same line. When the statement ends, the client takes it for a `DELIMITER`
    /// command whose argument runs on into the next line, or sends it to the server, which rejects it: no file
    /// means either, so it is refused rather than guessed at.
    #[error("a statement on line {line} begins with DELIMITER; put the DELIMITER command on a line of its own")]
    MisplacedDelimiter { line: usize },
    /// A backslash outside quotes and comments: the client reads `\g`, `\d`, `\.` and the like as its own
    /// commands, which the applier does not run (only `\N`, NULL, is SQL).
    #[error("backslash outside a quote on line {line}: the client would take it for one of its own commands")]
    ClientCommand { line: usize },
    /// A comment that the client and the server end in different places (`/*!` or `/*/` inside a `/* */`
    /// comment): the file would mean one thing loaded with the client and another applied.
    #[error("the comment on line {line} ends in one place for the client and in another for the server")]
    AmbiguousComment { line: usize },
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
            // `/*! ... */` (MySQL) and `/*M! ... */` (MariaDB) are executable; keep them as code, as the client
            // does.
            (b'/', Some(b'*')) if !bytes[at..].starts_with(b"/*!") && !bytes[at..].starts_with(b"/*M!") => {
                (Mode::BlockComment, 2)
            }
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

/// White space as the client's `my_isspace()` sees it.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// The client's `find_command()` and `com_delimiter()` for the line that starts at `at`, which the caller has
/// found to begin a statement: if the line is a `DELIMITER` command, returns its delimiter and where the next
/// line starts.
fn delimiter_command(text: &str, at: usize) -> Option<Result<(String, usize), ScriptError>> {
    let bytes = text.as_bytes();
    let (line_end, next_line) = match bytes[at..].iter().position(|&b| b == b'\n') {
        Some(n) => (at + n, at + n + 1),
        None => (bytes.len(), bytes.len()),
    };
    let line = &bytes[at..line_end];
    let first = line.iter().position(|&b| !is_space(b)).unwrap_or(line.len());
    let name = &line[first..];
    // A line with `\g` is left to the statement scanner, as in `find_command()`.
    if name.windows(2).any(|pair| pair == b"\\g") {
        return None;
    }
    // The command's name runs to the first space or tab, and must be the whole name: `delimiter2` is SQL.
    let word_end = name.iter().position(|&b| b == b' ' || b == b'\t').unwrap_or(name.len());
    if !name[..word_end].eq_ignore_ascii_case(b"delimiter") {
        return None;
    }
    let line = line_of(text, at);
    let invalid = |why| Some(Err(ScriptError::InvalidDelimiter { line, why }));
    let delimiter = match delimiter_argument(&name[word_end..]) {
        // `com_delimiter()` refuses the command and keeps the old delimiter.
        Argument::Missing => return Some(Err(ScriptError::EmptyDelimiter { line })),
        // `find_command()` does not take the line for a command, and sends it to the server as SQL.
        Argument::Invalid => return invalid("an empty or unterminated quoted delimiter is not a command"),
        Argument::Delimiter(delimiter) => delimiter,
    };
    // `com_delimiter()` refuses a backslash and keeps only what fits its buffer; either way the file would not
    // mean what it says.
    if delimiter.contains(&b'\\') {
        return invalid("the client refuses a delimiter with a backslash");
    }
    if delimiter.len() > MAX_DELIMITER_LEN {
        return invalid("the client keeps only the first 15 bytes of a delimiter");
    }
    Some(Ok((String::from_utf8_lossy(&delimiter).into_owned(), next_line)))
}

/// What follows `DELIMITER` on its line.
enum Argument {
    /// Nothing but white space.
    Missing,
    /// A quote left open, or nothing between the quotes.
    Invalid,
    /// The delimiter, unquoted and unescaped.
    Delimiter(Vec<u8>),
}

/// The client's `get_arg()` on what follows the command's name: the first argument, either quoted (`'`, `"` or
/// `` ` ``, up to the same quote, a doubled quote standing for one) or bare (up to a space: a tab does not end
/// it), with backslash escapes removed.
fn delimiter_argument(after_name: &[u8]) -> Argument {
    let Some(start) = after_name.iter().position(|&b| !is_space(b)) else {
        return Argument::Missing;
    };
    let rest = &after_name[start..];
    let (quote, rest) = match rest.first() {
        Some(&quote @ (b'\'' | b'"' | b'`')) => (Some(quote), &rest[1..]),
        _ => (None, rest),
    };
    let mut argument = Vec::new();
    let mut closed = quote.is_none();
    let mut at = 0;
    while let Some(&byte) = rest.get(at) {
        let next = rest.get(at + 1).copied();
        if (byte == b'\\' && next.is_some()) || (quote.is_some() && Some(byte) == quote && next == quote) {
            // An escaped character, or a doubled quote: keep the second byte.
            argument.extend(next);
            at += 2;
        } else if byte == quote.unwrap_or(b' ') {
            closed = true;
            break;
        } else {
            argument.push(byte);
            at += 1;
        }
    }
    if argument.is_empty() || !closed { Argument::Invalid } else { Argument::Delimiter(argument) }
}

/// Whether a statement's first word, up to white space or a comment, is `delimiter`: the client runs such a
/// statement as a `DELIMITER` command when it ends (`add_line()` passes every finished statement through
/// `find_command()`).
fn begins_with_delimiter_word(statement: &[u8]) -> bool {
    let word_end = (0..statement.len())
        .find(|&at| {
            is_space(statement[at])
                || matches!(step(statement, at, Mode::Code).0, Mode::LineComment | Mode::BlockComment)
        })
        .unwrap_or(statement.len());
    statement[..word_end].eq_ignore_ascii_case(b"delimiter")
}

/// One step of the scanner as the client's `add_line()` takes it, where that differs from the server's reading
/// (`step`):
/// - at the start of a statement, `--` begins a comment even without white space after it;
/// - a backslash outside quotes and comments begins one of the client's own commands (`\g`, `\d`, ...), which
///   the applier does not run: an error, but for `\N` (NULL);
/// - `/*!` sets the client's `ss_comment` flag, even inside a `/* */` comment, until the next `*/` or the end of
///   the line; a `*/` that finds the flag set clears it instead of ending a comment, where the server ends the
///   comment. That, and `/*/` in a comment (`/*` then `/` for the client, the comment's end for the server),
///   are errors.
fn client_step(
    text: &str,
    at: usize,
    mode: Mode,
    statement_begun: bool,
    executable_comment: &mut bool,
) -> Result<(Mode, usize), ScriptError> {
    let bytes = text.as_bytes();
    let rest = &bytes[at..];
    let ambiguous = || ScriptError::AmbiguousComment { line: line_of(text, at) };
    Ok(match mode {
        Mode::Code if !statement_begun && rest.starts_with(b"--") => (Mode::LineComment, 2),
        Mode::Code if rest.starts_with(b"\\N") => (Mode::Code, 2),
        Mode::Code if rest.starts_with(b"\\") => return Err(ScriptError::ClientCommand { line: line_of(text, at) }),
        Mode::Code | Mode::BlockComment if rest.starts_with(b"/*!") => {
            *executable_comment = true;
            (mode, 1)
        }
        Mode::Code if *executable_comment && rest.starts_with(b"*/") => {
            *executable_comment = false;
            (Mode::Code, 1)
        }
        Mode::BlockComment if *executable_comment && rest.starts_with(b"*/") => return Err(ambiguous()),
        Mode::BlockComment if rest.starts_with(b"/*/") => return Err(ambiguous()),
        _ => step(bytes, at, mode),
    })
}

/// Splits a script into the statements the client would send, without their delimiters. A statement starts at
/// its first code (comments and white space before it are left out, as the client leaves them out), and
/// statements that hold nothing but comments and white space are left out. Lines end in `\n` or `\r\n`; the
/// client reads both as `\n`, in strings too, and so do the statements.
///
/// # Errors
/// [`ScriptError`] for an unterminated quote or comment, a `DELIMITER` command that is empty, that the client
/// would refuse, or that does not begin its line, and for what the client reads otherwise than the server
/// (its backslash commands, some comments).
pub fn split_statements(text: &str) -> Result<Vec<String>, ScriptError> {
    let text = if text.contains("\r\n") { Cow::Owned(text.replace("\r\n", "\n")) } else { Cow::Borrowed(text) };
    let text = text.as_ref();
    let bytes = text.as_bytes();
    let mut statements = Vec::new();
    let mut delimiter = String::from(";");
    let mut mode = Mode::Code;
    let mut mode_started = 0;
    // Where the statement's first code is; `None` while the client's statement buffer would still be empty.
    let mut statement_start: Option<usize> = None;
    let mut executable_comment = false;
    // The client skips a UTF-8 byte order mark at the start of a file.
    let first_line = if text.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
    let mut at = first_line;
    while at < bytes.len() {
        let line_start = at == first_line || bytes[at - 1] == b'\n';
        if line_start {
            executable_comment = false; // add_line() starts every line afresh
        }
        if mode == Mode::Code {
            // Only a line that begins a statement can be a command; in a quote or a block comment the mode
            // is not `Code`, so none of their lines can.
            let command = (line_start && statement_start.is_none()).then(|| delimiter_command(text, at)).flatten();
            if let Some(command) = command {
                let (new_delimiter, next_line) = command?;
                delimiter = new_delimiter;
                at = next_line;
                continue;
            }
            if bytes[at..].starts_with(delimiter.as_bytes()) {
                if let Some(start) = statement_start.take() {
                    if begins_with_delimiter_word(&bytes[start..at]) {
                        return Err(ScriptError::MisplacedDelimiter { line: line_of(text, start) });
                    }
                    statements.push(text[start..at].trim_end().to_string());
                }
                at += delimiter.len();
                continue;
            }
        }
        let (next_mode, consumed) = client_step(text, at, mode, statement_start.is_some(), &mut executable_comment)?;
        let starts_comment = matches!(next_mode, Mode::LineComment | Mode::BlockComment);
        if mode == Mode::Code && !starts_comment && !is_space(bytes[at]) && statement_start.is_none() {
            statement_start = Some(at);
        }
        if next_mode != mode {
            mode_started = at;
        }
        mode = next_mode;
        at += consumed;
    }
    if let Mode::Quoted(_) | Mode::BlockComment = mode {
        return Err(ScriptError::Unterminated { what: mode.description(), line: line_of(text, mode_started) });
    }
    // The last statement needs no delimiter: the client sends what is left at the end of the script.
    if let Some(start) = statement_start {
        statements.push(text[start.min(text.len())..].trim_end().to_string());
    }
    Ok(statements)
}

/// Where the code of `text` begins: after leading white space and comments (`/*! .. */` is code). The length
/// of `text` when it holds nothing else.
pub fn code_start(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut mode = Mode::Code;
    let mut at = 0;
    while at < bytes.len() {
        let (next_mode, consumed) = step(bytes, at, mode);
        let code = mode == Mode::Code && !matches!(next_mode, Mode::LineComment | Mode::BlockComment);
        if code && !bytes[at].is_ascii_whitespace() {
            return at;
        }
        mode = next_mode;
        at += consumed;
    }
    text.len()
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
    fn a_line_starting_with_delimiter_inside_a_statement_is_sql() {
        let script = "DELIMITER $$\nCREATE PROCEDURE p(IN a INT)\nBEGIN\n    SELECT a AS\n    delimiter FROM DUAL;\n  \
                      DELIMITER ;\nEND $$\nDELIMITER ;\nSELECT 2;\n";
        assert_eq!(
            split_statements(script).unwrap(),
            vec![
                "CREATE PROCEDURE p(IN a INT)\nBEGIN\n    SELECT a AS\n    delimiter FROM DUAL;\n  DELIMITER ;\nEND",
                "SELECT 2"
            ]
        );
    }

    #[test]
    fn a_newline_in_a_string_or_a_comment_does_not_begin_a_statement() {
        let string = "SELECT 'a\nDELIMITER $$\n'  delimiter FROM DUAL;\nSELECT 2;";
        assert_eq!(
            split_statements(string).unwrap(),
            vec!["SELECT 'a\nDELIMITER $$\n'  delimiter FROM DUAL", "SELECT 2"]
        );
        let comment = "/* a\nDELIMITER $$\n*/ SELECT 1;\nSELECT 2 /*\ndelimiter $$\n*/;";
        assert_eq!(split_statements(comment).unwrap(), vec!["SELECT 1", "SELECT 2 /*\ndelimiter $$\n*/"]);
        let identifier = "SELECT 1 AS `a\ndelimiter $$\n`;";
        assert_eq!(split_statements(identifier).unwrap(), vec!["SELECT 1 AS `a\ndelimiter $$\n`"]);
    }

    #[test]
    fn delimiter_is_a_command_on_a_line_that_begins_a_statement() {
        let script = "SELECT 1; -- done\n  # a note\n/* and\n another */\n\t dElImItEr\t//\nSELECT 2; SELECT 3//";
        assert_eq!(split_statements(script).unwrap(), vec!["SELECT 1", "SELECT 2; SELECT 3"]);
    }

    #[test]
    fn a_word_that_only_starts_with_delimiter_is_sql() {
        assert_eq!(split_statements("delimiter_log: LOOP;").unwrap(), vec!["delimiter_log: LOOP"]);
        assert_eq!(split_statements("delimiter2 $$;").unwrap(), vec!["delimiter2 $$"]);
    }

    #[test]
    fn the_argument_is_read_as_the_clients_get_arg_reads_it() {
        // A bare argument ends at a space, not at a tab; a quoted one at its quote.
        assert_eq!(
            split_statements("DELIMITER $$ and more\nSELECT 1$$SELECT 2").unwrap(),
            vec!["SELECT 1", "SELECT 2"]
        );
        assert_eq!(split_statements("DELIMITER $$\t--\nSELECT 1$$\t--SELECT 2").unwrap(), vec!["SELECT 1", "SELECT 2"]);
        assert_eq!(split_statements("DELIMITER '$ $'\nSELECT 1$ $SELECT 2").unwrap(), vec!["SELECT 1", "SELECT 2"]);
        assert_eq!(split_statements("DELIMITER \"a''b\"\nSELECT 1a''bSELECT 2").unwrap(), vec!["SELECT 1", "SELECT 2"]);
        assert_eq!(split_statements("DELIMITER 'a''b'\nSELECT 1a'bSELECT 2").unwrap(), vec!["SELECT 1", "SELECT 2"]);
        assert_eq!(split_statements("DELIMITER a\\$\nSELECT 1a$SELECT 2").unwrap(), vec!["SELECT 1", "SELECT 2"]);
        // Windows line ends and a byte order mark, as the client reads them.
        assert_eq!(split_statements("\u{feff}DELIMITER $$\r\nSELECT 1$$\r\n").unwrap(), vec!["SELECT 1"]);
    }

    #[test]
    fn delimiters_the_client_would_not_take_are_errors() {
        let error = |script: &str| split_statements(script).unwrap_err();
        assert_eq!(error("SELECT 1;\nDELIMITER  \n"), ScriptError::EmptyDelimiter { line: 2 });
        assert!(matches!(error("DELIMITER ''\n"), ScriptError::InvalidDelimiter { line: 1, .. }));
        assert!(matches!(error("DELIMITER '$$\n"), ScriptError::InvalidDelimiter { line: 1, .. }));
        assert!(matches!(error("DELIMITER \\\\\n"), ScriptError::InvalidDelimiter { line: 1, .. }));
        assert!(matches!(error("DELIMITER 0123456789abcdef\n"), ScriptError::InvalidDelimiter { line: 1, .. }));
        assert!(split_statements("DELIMITER 0123456789abcde\nSELECT 1").is_ok());
    }

    #[test]
    fn delimiter_after_other_text_on_its_line_is_refused() {
        let after_statement = "SELECT 1; DELIMITER $$\nCREATE PROCEDURE p() BEGIN SELECT 1; END $$\n";
        assert_eq!(split_statements(after_statement).unwrap_err(), ScriptError::MisplacedDelimiter { line: 1 });
        let after_comment = "SELECT 1;\n/* switch */ DELIMITER $$\nSELECT 2;\n";
        assert_eq!(split_statements(after_comment).unwrap_err(), ScriptError::MisplacedDelimiter { line: 2 });
        // Left at the end of the script, the client sends it to the server as it is; so does the applier.
        assert_eq!(split_statements("SELECT 1; DELIMITER $$").unwrap(), vec!["SELECT 1", "DELIMITER $$"]);
    }

    #[test]
    fn double_dash_begins_a_comment_at_the_start_of_a_statement() {
        assert_eq!(split_statements("--no space\ndelimiter $$\nSELECT 1$$").unwrap(), vec!["SELECT 1"]);
        assert_eq!(split_statements("SELECT 1 --1;").unwrap(), vec!["SELECT 1 --1"]);
    }

    #[test]
    fn a_statement_begins_at_its_first_code() {
        let script =
            "-- why\nDROP PROCEDURE IF EXISTS p;\n/* how */ /*M!100000 CREATE */ PROCEDURE p() SELECT 1;\n-- end\n";
        assert_eq!(
            split_statements(script).unwrap(),
            vec!["DROP PROCEDURE IF EXISTS p", "/*M!100000 CREATE */ PROCEDURE p() SELECT 1"]
        );
    }

    #[test]
    fn lines_end_in_newline_for_the_client_even_in_strings() {
        let script = "DELIMITER $$\r\nSELECT 'a\r\nb' $$\r\n";
        assert_eq!(split_statements(script).unwrap(), vec!["SELECT 'a\nb'"]);
    }

    #[test]
    fn what_the_client_reads_otherwise_than_the_server_is_refused() {
        assert_eq!(split_statements("SELECT 1\\g").unwrap_err(), ScriptError::ClientCommand { line: 1 });
        assert_eq!(split_statements("SELECT \\N, '\\g';").unwrap(), vec!["SELECT \\N, '\\g'"]);
        let executable_in_comment = "SELECT 1 /* see /*!50003 */ ; SELECT 2 */;";
        assert_eq!(split_statements(executable_in_comment).unwrap_err(), ScriptError::AmbiguousComment { line: 1 });
        assert_eq!(split_statements("SELECT 1 /* a /*/ b */;").unwrap_err(), ScriptError::AmbiguousComment { line: 1 });
        // On its own line, the `*/` finds the client's flag cleared, as add_line() clears it at each line.
        assert_eq!(split_statements("SELECT 1 /* see /*!50003\n*/;").unwrap(), vec!["SELECT 1 /* see /*!50003\n*/"]);
        assert_eq!(split_statements("SELECT 1 /*!50003 , 2 */;").unwrap(), vec!["SELECT 1 /*!50003 , 2 */"]);
    }

    #[test]
    fn fingerprint_ignores_comments_white_space_and_definer() {
        let file = "CREATE PROCEDURE `p`(IN a INT) -- why\nBEGIN\n  /* note */ SELECT 'a  b';\nEND";
        let shown = "CREATE DEFINER=`root`@`127.0.0.1` PROCEDURE `p`(IN a INT) \nBEGIN\n   SELECT 'a  b';\nEND";
        assert_eq!(definition_fingerprint(file), definition_fingerprint(shown));
        assert_ne!(definition_fingerprint(shown), definition_fingerprint(&shown.replace("'a  b'", "'a b'")));
    }
}
