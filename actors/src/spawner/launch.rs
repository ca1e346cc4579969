//! Starting a server process without forking the hub, and waiting for its exit.
//!
//! fork(2) copies the hub's page tables and leaves every page of the hub copy-on-write
//! until the child execs. With a hundred servers starting at once, the hub's threads
//! spent a storm of starts taking copy-on-write faults: 1,000 servers were ready in
//! 6–8 s on one node, and on three nodes sharing two cores raft's appends and the
//! serving leases starved until the cluster stopped serving. posix_spawn(3) runs the
//! child in the hub's memory until it execs (vfork), so nothing is copied, and does the
//! rest of the set-up a server needs before exec: a new session and process group
//! (`POSIX_SPAWN_SETSID`), signal mask and dispositions reset, stdin from `/dev/null`,
//! stdout and stderr to the log, the working directory.
//!
//! What it cannot do is give the child back transparent huge pages: the hub turns them
//! off for its own memory (`PR_SET_THP_DISABLE`, node's main), and the flag passes
//! through exec. A child spawned this way execs from the hub's memory, whose flag its
//! new memory takes: the hub turns huge pages back on for the moment of the spawn, and
//! spawns take turns for it.
//!
//! The child is reaped through a pidfd, which becomes readable when it exits.

#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// What a server process is started with.
pub(crate) struct Launch<'a> {
    /// The command: a path, or a name looked up on the `PATH` of `env`.
    pub(crate) argv: &'a [String],
    /// Its whole environment.
    pub(crate) env: &'a BTreeMap<String, String>,
    /// Its working directory.
    pub(crate) dir: &'a Path,
    /// Where its stdout and stderr go.
    pub(crate) output: &'a File,
}

/// How a reaped process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ended {
    pub(crate) code: Option<i32>,
    pub(crate) signal: Option<i32>,
}

/// Spawns take turns: each turns the hub's huge pages on for its moment.
static SPAWNING: Mutex<()> = Mutex::new(());

/// Starts `launch`'s command as the leader of a new session; its pid. The error of a
/// command that cannot be run (not found, not executable) is that of exec.
pub(crate) fn spawn(launch: &Launch<'_>) -> io::Result<i32> {
    let (argv0, args) = launch
        .argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command"))?;
    let program = resolve(argv0, launch.env, launch.dir)?;
    let program = cstring(program.as_os_str())?;
    let argv: Vec<CString> = std::iter::once(argv0.as_str())
        .chain(args.iter().map(String::as_str))
        .map(|a| cstring(OsStr::new(a)))
        .collect::<io::Result<_>>()?;
    let envp: Vec<CString> = launch
        .env
        .iter()
        .map(|(k, v)| cstring(OsStr::new(&format!("{k}={v}"))))
        .collect::<io::Result<_>>()?;
    let dir = cstring(launch.dir.as_os_str())?;
    let argv_ptrs = null_terminated(&argv);
    let envp_ptrs = null_terminated(&envp);

    let _turn = SPAWNING.lock().unwrap_or_else(|e| e.into_inner());
    let thp_off = nix::sys::prctl::get_thp_disable().unwrap_or(false);
    if thp_off {
        let _ = nix::sys::prctl::set_thp_disable(false);
    }
    let spawned = posix_spawn(&program, &argv_ptrs, &envp_ptrs, &dir, launch.output);
    if thp_off {
        let _ = nix::sys::prctl::set_thp_disable(true);
    }
    spawned
}

/// Waits until process `pid`, a child of this process, exits, and reaps it.
pub(crate) async fn wait(pid: i32) -> io::Result<Ended> {
    let tick = match pidfd(pid) {
        Some(fd) => {
            // SAFETY: `fd` is an open pidfd that the `AsyncFd` owns until it is dropped
            let fd = unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
            }
            .map_err(io::Error::from)?;
            // readable once the process has exited
            let _ = fd.readable().await?;
            Duration::from_millis(1)
        }
        // a kernel without pidfds (before 5.3): look every 50 ms
        None => Duration::from_millis(50),
    };
    loop {
        if let Some(ended) = reap(pid)? {
            return Ok(ended);
        }
        tokio::time::sleep(tick).await;
    }
}

/// Reaps `pid` if it has exited.
fn reap(pid: i32) -> io::Result<Option<Ended>> {
    match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Ok(Some(Ended {
            code: Some(code),
            signal: None,
        })),
        Ok(WaitStatus::Signaled(_, signal, _)) => Ok(Some(Ended {
            code: None,
            signal: Some(signal as i32),
        })),
        Ok(_) => Ok(None),
        Err(e) => Err(io::Error::from(e)),
    }
}

fn pidfd(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor or -1
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: `fd` was just opened for us and nothing else owns it
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The file `argv0` names, as an absolute path: itself when it holds a `/` (relative
/// to `dir`, where the child starts), else the first executable file of that name in
/// the `PATH` of `env` (the hub's own when `env` has none), as execvp(3) looks.
fn resolve(argv0: &str, env: &BTreeMap<String, String>, dir: &Path) -> io::Result<PathBuf> {
    if argv0.is_empty() {
        return Err(io::Error::from(io::ErrorKind::NotFound));
    }
    let dir = std::path::absolute(dir)?;
    if argv0.contains('/') {
        return Ok(dir.join(argv0));
    }
    let path = env
        .get("PATH")
        .cloned()
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".to_owned());
    let mut denied = false;
    for entry in path.split(':') {
        let candidate = dir
            .join(if entry.is_empty() { "." } else { entry })
            .join(argv0);
        if !candidate.is_file() {
            continue;
        }
        if nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK).is_ok() {
            return Ok(candidate);
        }
        denied = true;
    }
    Err(io::Error::from(if denied {
        io::ErrorKind::PermissionDenied
    } else {
        io::ErrorKind::NotFound
    }))
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{s:?} holds a NUL byte"),
        )
    })
}

fn null_terminated(strings: &[CString]) -> Vec<*mut libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect()
}

/// Checks a posix_spawn(3) family return value (an errno, not -1).
fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(ret))
    }
}

/// The attributes and file actions of one spawn, destroyed when dropped.
struct Setup {
    attr: libc::posix_spawnattr_t,
    actions: libc::posix_spawn_file_actions_t,
}

impl Drop for Setup {
    fn drop(&mut self) {
        // SAFETY: both were initialized in `posix_spawn` before a `Setup` exists
        unsafe {
            libc::posix_spawnattr_destroy(&mut self.attr);
            libc::posix_spawn_file_actions_destroy(&mut self.actions);
        }
    }
}

fn posix_spawn(
    program: &CString,
    argv: &[*mut libc::c_char],
    envp: &[*mut libc::c_char],
    dir: &CString,
    output: &File,
) -> io::Result<i32> {
    const FLAGS: libc::c_short = libc::POSIX_SPAWN_SETSID as libc::c_short
        | libc::POSIX_SPAWN_SETSIGMASK as libc::c_short
        | libc::POSIX_SPAWN_SETSIGDEF as libc::c_short;
    let out = output.as_raw_fd();
    // SAFETY: every pointer handed to libc points into values that outlive the call
    // (`program`, `argv`, `envp` and the strings they point to, `dir`, the sets on this
    // stack frame); `argv` and `envp` end with a null pointer; the attribute and action
    // objects are initialized before use and destroyed once (`Setup`).
    unsafe {
        let mut setup = std::mem::MaybeUninit::<Setup>::uninit();
        let s = setup.as_mut_ptr();
        check(libc::posix_spawnattr_init(std::ptr::addr_of_mut!(
            (*s).attr
        )))?;
        if let Err(e) = check(libc::posix_spawn_file_actions_init(std::ptr::addr_of_mut!(
            (*s).actions
        ))) {
            libc::posix_spawnattr_destroy(std::ptr::addr_of_mut!((*s).attr));
            return Err(e);
        }
        let mut setup = setup.assume_init();
        // no blocked signal, and every signal the hub ignores (SIGPIPE) back to default
        let mut none: libc::sigset_t = std::mem::zeroed();
        let mut all: libc::sigset_t = std::mem::zeroed();
        // they return -1 only for an invalid pointer
        libc::sigemptyset(&mut none);
        libc::sigfillset(&mut all);
        check(libc::posix_spawnattr_setsigmask(&mut setup.attr, &none))?;
        check(libc::posix_spawnattr_setsigdefault(&mut setup.attr, &all))?;
        check(libc::posix_spawnattr_setflags(&mut setup.attr, FLAGS))?;
        let actions = &mut setup.actions;
        check(libc::posix_spawn_file_actions_addopen(
            actions,
            0,
            c"/dev/null".as_ptr(),
            libc::O_RDONLY,
            0,
        ))?;
        check(libc::posix_spawn_file_actions_adddup2(actions, out, 1))?;
        check(libc::posix_spawn_file_actions_adddup2(actions, out, 2))?;
        check(libc::posix_spawn_file_actions_addchdir_np(
            actions,
            dir.as_ptr(),
        ))?;
        let mut pid: libc::pid_t = 0;
        check(libc::posix_spawn(
            &mut pid,
            program.as_ptr(),
            &setup.actions,
            &setup.attr,
            argv.as_ptr(),
            envp.as_ptr(),
        ))?;
        Ok(pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_looked_up_on_the_path_of_the_server_s_environment() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = bin.join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        let env = |path: &str| BTreeMap::from([("PATH".to_owned(), path.to_owned())]);
        let here = dir.path();
        // not executable yet: found, but refused as exec refuses it
        let denied = resolve("tool", &env(&bin.to_string_lossy()), here).unwrap_err();
        assert_eq!(denied.kind(), io::ErrorKind::PermissionDenied);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("/nonexistent:{}", bin.display());
        assert_eq!(resolve("tool", &env(&path), here).unwrap(), tool);
        // a relative PATH entry counts from where the server starts
        assert_eq!(
            resolve("tool", &env("bin"), here).unwrap(),
            here.join("bin/tool")
        );
        let missing = resolve("tool", &env("/nonexistent"), here).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        // a path is taken as it is, from where the server starts
        assert_eq!(
            resolve("bin/tool", &env(""), here).unwrap(),
            here.join("bin/tool")
        );
        assert_eq!(
            resolve("/bin/sh", &env(""), here).unwrap(),
            PathBuf::from("/bin/sh")
        );
    }

    #[tokio::test]
    async fn a_spawned_command_runs_with_what_it_was_given_and_is_reaped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let output = File::create(&log).unwrap();
        let env = BTreeMap::from([
            ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
            ("GREETING".to_owned(), "hello there".to_owned()),
        ]);
        let argv: Vec<String> = [
            "sh",
            "-c",
            "echo \"$GREETING\" \"$0\" \"$(pwd)\"; read line || echo eof; echo oops >&2; \
             kill -0 $$ && exit 3",
            "arg0",
        ]
        .map(String::from)
        .to_vec();
        let pid = spawn(&Launch {
            argv: &argv,
            env: &env,
            dir: dir.path(),
            output: &output,
        })
        .unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(10), wait(pid))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            ended,
            Ended {
                code: Some(3),
                signal: None
            }
        );
        let text = std::fs::read_to_string(&log).unwrap();
        let cwd = dir.path().canonicalize().unwrap();
        assert_eq!(
            text,
            format!("hello there arg0 {}\neof\noops\n", cwd.display())
        );
        // reaped: the pid is no child of ours any more
        assert!(waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)).is_err());
    }

    #[tokio::test]
    async fn a_signal_ends_it_and_a_missing_command_is_exec_s_error() {
        let dir = tempfile::tempdir().unwrap();
        let output = File::create(dir.path().join("log")).unwrap();
        let env = BTreeMap::new();
        let sleep: Vec<String> = ["/bin/sleep", "30"].map(String::from).to_vec();
        let launch = |argv| Launch {
            argv,
            env: &env,
            dir: dir.path(),
            output: &output,
        };
        let pid = spawn(&launch(&sleep)).unwrap();
        nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM).unwrap();
        let ended = wait(pid).await.unwrap();
        assert_eq!(ended.signal, Some(libc::SIGTERM));
        let missing: Vec<String> = vec!["/nonexistent/server".into()];
        let e = spawn(&launch(&missing)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
