//! A small `--name value` command-line reader (the harness needs nothing more).

use std::collections::HashMap;
use std::str::FromStr;

use crate::BoxError;

/// Options given as `--name value` or `--flag`.
#[derive(Debug, Default)]
pub(crate) struct Args {
    values: HashMap<String, String>,
    flags: Vec<String>,
}

impl Args {
    /// Reads `--name value` pairs; `--name` followed by another option (or nothing) is a flag.
    pub(crate) fn parse(raw: impl IntoIterator<Item = String>) -> Result<Self, BoxError> {
        let mut args = Args::default();
        let mut raw = raw.into_iter().peekable();
        while let Some(arg) = raw.next() {
            let Some(name) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg:?}").into());
            };
            match raw.peek() {
                Some(next) if !next.starts_with("--") => {
                    let value = raw.next().unwrap_or_default();
                    args.values.insert(name.to_owned(), value);
                }
                _ => args.flags.push(name.to_owned()),
            }
        }
        Ok(args)
    }

    /// The value of `--name`, or `default`, parsed; consumed so [`Args::finish`] can tell
    /// unknown options.
    pub(crate) fn value<T>(&mut self, name: &str, default: &str) -> Result<T, BoxError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        let raw = self.values.remove(name);
        let raw = raw.as_deref().unwrap_or(default);
        raw.parse()
            .map_err(|err| format!("--{name} {raw:?}: {err}").into())
    }

    /// Whether `--name` was given (consumed).
    pub(crate) fn flag(&mut self, name: &str) -> bool {
        let before = self.flags.len();
        self.flags.retain(|flag| flag != name);
        before != self.flags.len()
    }

    /// Fails on options nobody asked for (typos).
    pub(crate) fn finish(self) -> Result<(), BoxError> {
        let mut unknown: Vec<&String> = self.values.keys().chain(&self.flags).collect();
        unknown.sort();
        match unknown.is_empty() {
            true => Ok(()),
            false => Err(format!("unknown options: {unknown:?}").into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Args {
        Args::parse(line.split_whitespace().map(str::to_owned)).unwrap()
    }

    #[test]
    fn values_flags_and_defaults() {
        let mut args = parse("--runs 5 --smoke --out /tmp/x");
        assert_eq!(args.value::<usize>("runs", "3").unwrap(), 5);
        assert_eq!(args.value::<usize>("clients", "100").unwrap(), 100);
        assert!(args.flag("smoke"));
        assert!(!args.flag("no-build"));
        assert_eq!(args.value::<String>("out", "docs").unwrap(), "/tmp/x");
        args.finish().unwrap();
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        assert!(parse("--rusn 5").finish().is_err());
        assert!(parse("--runs five").value::<usize>("runs", "3").is_err());
        assert!(Args::parse(["stray".to_owned()]).is_err());
    }
}
