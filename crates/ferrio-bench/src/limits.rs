//! The open-file limit (`RLIMIT_NOFILE`) the scale scenario needs: one descriptor per socket in
//! the generator and in the server. Read from `/proc/self/limits` and raised with the
//! `prlimit` command of util-linux (which needs the privilege to raise a hard limit), so
//! that the harness needs no foreign-function call; processes started afterwards inherit it.

use std::process::Command;

use crate::BoxError;

/// The soft and hard limits on open files of this process (`None`: unlimited).
pub(crate) fn open_files() -> Result<(Option<u64>, Option<u64>), BoxError> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    parse_open_files(&limits).ok_or_else(|| "no \"Max open files\" in /proc/self/limits".into())
}

fn parse_open_files(limits: &str) -> Option<(Option<u64>, Option<u64>)> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    let mut limit = || match fields.next()? {
        "unlimited" => Some(None),
        n => n.parse().ok().map(Some),
    };
    Some((limit()?, limit()?))
}

/// Makes sure this process may open at least `needed` files, raising its soft (and if need
/// be its hard) limit with `prlimit`. Fails with what to do when it cannot.
pub(crate) fn ensure_open_files(needed: u64) -> Result<(), BoxError> {
    let (soft, hard) = open_files()?;
    if soft.is_none_or(|soft| soft >= needed) {
        return Ok(());
    }
    let target = hard.map_or(needed, |hard| hard.max(needed));
    let pid = std::process::id().to_string();
    let raised = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={target}:{target}")])
        .status()
        .is_ok_and(|status| status.success());
    match open_files()? {
        (Some(soft), _) if soft < needed => Err(format!(
            "{needed} open files needed, the limit is {soft} and `prlimit` {} raise it: \
             run with `ulimit -n {needed}` or more (raising the hard limit needs root)",
            if raised { "did not" } else { "could not" }
        )
        .into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_open_files_line() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             95000                95000                processes \n\
                      Max open files            20000                524288               files     \n";
        assert_eq!(parse_open_files(limits), Some((Some(20000), Some(524288))));
        let unlimited =
            "Max open files            1024                 unlimited            files\n";
        assert_eq!(parse_open_files(unlimited), Some((Some(1024), None)));
        assert_eq!(parse_open_files("nothing here"), None);
    }

    #[test]
    fn a_limit_already_high_enough_is_left_alone() {
        let (soft, _) = open_files().unwrap();
        let before = open_files().unwrap();
        ensure_open_files(soft.unwrap_or(u64::MAX).min(16)).unwrap();
        assert_eq!(open_files().unwrap(), before);
    }
}
