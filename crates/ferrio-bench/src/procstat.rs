//! Reading CPU time from `/proc`: user and system time of a process or of one thread
//! (`/proc/PID/stat`, `/proc/PID/task/TID/stat`), and the summary `strace -c` writes.

use crate::BoxError;

/// User and system CPU time, in clock ticks (`getconf CLK_TCK`, 100 on Linux).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CpuTicks {
    pub(crate) user: u64,
    pub(crate) system: u64,
}

/// Clock ticks per second of `/proc/*/stat`. Linux reports `USER_HZ`, which is 100 on every
/// architecture it exports to user space.
pub(crate) const TICKS_PER_SEC: u64 = 100;

impl CpuTicks {
    /// Nanoseconds of user time.
    pub(crate) fn user_ns(self) -> u64 {
        self.user * (1_000_000_000 / TICKS_PER_SEC)
    }

    /// Nanoseconds of system time.
    pub(crate) fn system_ns(self) -> u64 {
        self.system * (1_000_000_000 / TICKS_PER_SEC)
    }

    /// The time from `earlier` to `self`, `None` if either went backwards.
    pub(crate) fn since(self, earlier: CpuTicks) -> Option<CpuTicks> {
        Some(CpuTicks {
            user: self.user.checked_sub(earlier.user)?,
            system: self.system.checked_sub(earlier.system)?,
        })
    }
}

/// `utime` and `stime` (fields 14 and 15) of a `/proc/PID/stat` line. The second field, the
/// command name, is in parentheses and may itself hold spaces and parentheses, so the fields
/// are counted from the last `)`.
pub(crate) fn parse_stat(line: &str) -> Result<CpuTicks, BoxError> {
    let rest = line
        .rfind(')')
        .map(|end| &line[end + 1..])
        .ok_or("no `)` after the command name in /proc/PID/stat")?;
    // After the name: state (field 3) ... utime (14), stime (15).
    let mut fields = rest.split_whitespace().skip(11);
    let mut next = |name: &str| -> Result<u64, BoxError> {
        fields
            .next()
            .and_then(|field| field.parse().ok())
            .ok_or_else(|| format!("no {name} in /proc/PID/stat").into())
    };
    let user = next("utime")?;
    let system = next("stime")?;
    Ok(CpuTicks { user, system })
}

/// User and system time of process `pid`, all its threads (those that ended included).
pub(crate) fn process_ticks(pid: u32) -> Result<CpuTicks, BoxError> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?)
}

/// User and system time of thread `tid` of this process.
pub(crate) fn thread_ticks(tid: u32) -> Result<CpuTicks, BoxError> {
    parse_stat(&std::fs::read_to_string(format!(
        "/proc/self/task/{tid}/stat"
    ))?)
}

/// CPU time of thread `tid` of this process in nanoseconds (the first field of its
/// `schedstat`, finer than the ticks of `stat`).
pub(crate) fn thread_cpu_ns(tid: u32) -> Result<u64, BoxError> {
    let schedstat = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))?;
    schedstat
        .split_whitespace()
        .next()
        .and_then(|ns| ns.parse().ok())
        .ok_or_else(|| "unreadable /proc/self/task/TID/schedstat".into())
}

/// The id of the calling thread (from the `/proc/thread-self` link, `PID/task/TID`).
pub(crate) fn current_tid() -> Result<u32, BoxError> {
    let link = std::fs::read_link("/proc/thread-self")?;
    link.file_name()
        .and_then(|tid| tid.to_str())
        .and_then(|tid| tid.parse().ok())
        .ok_or_else(|| format!("unexpected /proc/thread-self link {link:?}").into())
}

/// One line of `strace -c`'s summary: a system call and how often it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyscallCount {
    pub(crate) name: String,
    pub(crate) calls: u64,
    pub(crate) errors: u64,
}

/// The rows of a `strace -c` summary (`% time  seconds  usecs/call  calls  errors  syscall`),
/// the `total` row last. The `errors` column is blank for calls that never failed.
pub(crate) fn parse_strace_summary(text: &str) -> Vec<SyscallCount> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Data rows start with the percentage; the header and the dashes do not parse.
        if fields.len() < 5 || fields[0].parse::<f64>().is_err() {
            continue;
        }
        let Some(name) = fields.last() else { continue };
        let Ok(calls) = fields[3].parse::<u64>() else {
            continue;
        };
        let errors = match fields.len() {
            6 => fields[4].parse().unwrap_or(0),
            _ => 0,
        };
        rows.push(SyscallCount {
            name: (*name).to_owned(),
            calls,
            errors,
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = "4242 (tokio (runtime) 1) S 1 4242 4242 0 -1 4194560 812 0 0 0 \
                    1234 567 0 0 20 0 3 0 100 1000000 300 18446744073709551615";
        assert_eq!(
            parse_stat(line).unwrap(),
            CpuTicks {
                user: 1234,
                system: 567
            }
        );
    }

    #[test]
    fn truncated_or_garbled_stat_is_an_error() {
        assert!(parse_stat("4242 (x) S 1 2 3").is_err());
        assert!(parse_stat("no parenthesis at all").is_err());
        assert!(parse_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 ten 5").is_err());
    }

    #[test]
    fn ticks_convert_and_subtract() {
        let a = CpuTicks { user: 3, system: 1 };
        let b = CpuTicks { user: 5, system: 4 };
        assert_eq!(b.since(a), Some(CpuTicks { user: 2, system: 3 }));
        assert_eq!(a.since(b), None);
        assert_eq!(b.user_ns(), 50_000_000);
        assert_eq!(b.system_ns(), 40_000_000);
    }

    #[test]
    fn the_own_thread_can_be_read() {
        let tid = current_tid().unwrap();
        thread_ticks(tid).unwrap();
        thread_cpu_ns(tid).unwrap();
        process_ticks(std::process::id()).unwrap();
    }

    #[test]
    fn strace_summary_rows() {
        let text = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 52.10    0.412000           4    100000           write
 40.00    0.316000           2    150000     50000 recvfrom
  7.90    0.062000           3     20000           epoll_wait
------ ----------- ----------- --------- --------- ----------------
100.00    0.790000           3    270000     50000 total
";
        let rows = parse_strace_summary(text);
        assert_eq!(rows.len(), 4);
        assert_eq!(
            rows[1],
            SyscallCount {
                name: "recvfrom".into(),
                calls: 150_000,
                errors: 50_000
            }
        );
        assert_eq!(rows[0].errors, 0);
        assert_eq!(rows[3].name, "total");
        assert_eq!(rows[3].calls, 270_000);
        assert!(parse_strace_summary("strace: Process 12 attached\n").is_empty());
    }
}
