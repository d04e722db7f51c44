//! `seckill.toml`: every long option of the command line, in a file. Its top level holds the global options
//! (`database_url`, `replica_url`, `log_format`), and a table named after a command holds that command's
//! (`[serve]`, `[cluster]`, `[relay]`, ...), each under its option's name with `_` for `-`:
//!
//! ```toml
//! database_url = "mysql://shop:secret@127.0.0.1:3306/shop"
//!
//! [serve]
//! listen = "0.0.0.0:8080"
//! redis_url = "redis://127.0.0.1:6379/"
//! user_rate = 10
//! ```
//!
//! The file is the lowest layer: an environment variable overrides it, and the command line overrides both, as
//! Spring's `application.yml` is overridden. figment does the layering: the file's values, then the options the
//! user set (on the command line or by environment), merged; the result is handed to clap as a command line, so
//! that every value is checked by the option's own parser and a bad one is the same one-line error.
//!
//! The file is `--config FILE` (or `SECKILL_CONFIG`), else `seckill.toml` in the current directory when there is
//! one. A key that names no option of the command is an error, so that a typo is never silently ignored.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Num, Value};

use super::Failure;

/// The file read when no `--config` is given, if it exists.
pub(crate) const DEFAULT_FILE: &str = "seckill.toml";

/// The command line with the file's settings beneath it: `args` unchanged when there is no file.
pub(crate) fn command_line(command: &Command, args: Vec<OsString>) -> Result<Vec<OsString>, Failure> {
    // A first parse only finds the file and the subcommand; a command line clap refuses is refused again, with
    // its own message, by the parse that follows.
    let Ok(matches) = command.clone().try_get_matches_from(&args) else { return Ok(args) };
    let Some(path) = file(&matches) else { return Ok(args) };
    let Some((name, sub_matches)) = matches.subcommand() else { return Ok(args) };
    let Some(subcommand) = command.find_subcommand(name) else { return Ok(args) };
    // A command of commands (`item create`): the file's global options only, beneath what was given.
    if sub_matches.subcommand().is_some() {
        return globals_only(command, &matches, &path, args);
    }
    let shown = path.display().to_string();
    let layered = Figment::from(Toml::file(&path))
        .merge(Serialized::defaults(set_by_user(command, &matches, None)))
        .merge(Serialized::defaults(set_by_user(subcommand, sub_matches, Some(name))));
    let settings: Dict = layered.extract().map_err(|error| Failure::new(format!("{shown}: {error}")))?;
    let mut line = vec![args.first().cloned().unwrap_or_else(|| "seckill".into()), name.into()];
    for (key, value) in &settings {
        match value {
            Value::Dict(_, table) if key == name => {
                for (key, value) in table {
                    push(&mut line, subcommand, key, value)
                        .map_err(|error| Failure::new(format!("{shown} [{name}]: {error}")))?;
                }
            }
            // Another command's table: for when that command runs.
            Value::Dict(..) if command.find_subcommand(key).is_some() => {}
            value => push(&mut line, command, key, value).map_err(|error| Failure::new(format!("{shown}: {error}")))?,
        }
    }
    // Positional arguments as they were given.
    line.extend(positionals(subcommand, sub_matches));
    Ok(line)
}

/// `args` with the file's global options beneath them, for a command of commands (whose own options the file
/// does not hold): the file's globals the user did not set go before the command line given.
fn globals_only(
    command: &Command,
    matches: &ArgMatches,
    path: &Path,
    args: Vec<OsString>,
) -> Result<Vec<OsString>, Failure> {
    let shown = path.display().to_string();
    let given = set_by_user(command, matches, None);
    let settings: Dict = Figment::from(Toml::file(path))
        .merge(Serialized::defaults(&given))
        .extract()
        .map_err(|error| Failure::new(format!("{shown}: {error}")))?;
    let mut globals = Vec::new();
    for (key, value) in &settings {
        // What was given stays where it was given.
        if !matches!(value, Value::Dict(..)) && !given.contains_key(key) {
            push(&mut globals, command, key, value).map_err(|error| Failure::new(format!("{shown}: {error}")))?;
        }
    }
    // The globals go right after the program's name: the command line given follows, and wins.
    let mut line: Vec<OsString> = args.iter().take(1).cloned().collect();
    line.extend(globals);
    line.extend(args.into_iter().skip(1));
    Ok(line)
}

/// The file named by `--config`, else `seckill.toml` when it exists.
fn file(matches: &ArgMatches) -> Option<PathBuf> {
    match matches.get_one::<PathBuf>("config") {
        Some(path) => Some(path.clone()),
        None => Path::new(DEFAULT_FILE).is_file().then(|| PathBuf::from(DEFAULT_FILE)),
    }
}

/// The options of `command` the user set, on the command line or by environment, by their key in the file
/// (under the command's table when `table` names it).
fn set_by_user(command: &Command, matches: &ArgMatches, table: Option<&str>) -> Dict {
    let mut set = Dict::new();
    for arg in command.get_arguments().filter(|arg| arg.get_long().is_some()) {
        let id = arg.get_id().as_str();
        if !matches!(matches.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable)) {
            continue;
        }
        let value = match arg.get_action() {
            ArgAction::SetTrue => Value::from(matches.get_flag(id)),
            _ => {
                let raw: Vec<String> = matches
                    .get_raw(id)
                    .into_iter()
                    .flatten()
                    .map(|value| value.to_string_lossy().into_owned())
                    .collect();
                match raw.as_slice() {
                    [one] => Value::from(one.clone()),
                    many => Value::from(many.to_vec()),
                }
            }
        };
        set.insert(key(arg), value);
    }
    match table {
        Some(table) => Dict::from([(table.to_string(), Value::from(set))]),
        None => set,
    }
}

/// An option's key in the file: its long name with `_` for `-`.
fn key(arg: &clap::Arg) -> String {
    arg.get_long().unwrap_or_default().replace('-', "_")
}

/// Adds `--option value` for the file's `key` to `line`.
fn push(line: &mut Vec<OsString>, command: &Command, key: &str, value: &Value) -> Result<(), String> {
    let arg = command
        .get_arguments()
        .find(|arg| arg.get_long().is_some() && self::key(arg) == key)
        .ok_or_else(|| format!("`{key}` is not an option of `{}`", command.get_name()))?;
    let flag = format!("--{}", arg.get_long().unwrap_or_default());
    let values: Vec<&Value> = match value {
        Value::Array(_, values) => values.iter().collect(),
        value => vec![value],
    };
    for value in values {
        match (arg.get_action(), value) {
            (ArgAction::SetTrue, Value::Bool(_, true)) => line.push(flag.clone().into()),
            (ArgAction::SetTrue, Value::Bool(_, false)) => {}
            (ArgAction::SetTrue, _) => return Err(format!("`{key}` is true or false")),
            (_, Value::String(_, text)) => line.extend([flag.clone().into(), text.into()]),
            (_, Value::Num(_, number)) => {
                let text = match number {
                    Num::F32(n) => n.to_string(),
                    Num::F64(n) => n.to_string(),
                    integer => integer.to_i128().map(|n| n.to_string()).unwrap_or_default(),
                };
                line.extend([flag.clone().into(), text.into()]);
            }
            (_, Value::Bool(_, value)) => line.extend([flag.clone().into(), value.to_string().into()]),
            _ => return Err(format!("`{key}` takes a string, a number or a list of them")),
        }
    }
    Ok(())
}

/// The positional arguments of the subcommand as given (they have no place in the file).
fn positionals(command: &Command, matches: &ArgMatches) -> Vec<OsString> {
    command
        .get_positionals()
        .flat_map(|arg| matches.get_raw(arg.get_id().as_str()).into_iter().flatten().map(OsString::from))
        .collect()
}
