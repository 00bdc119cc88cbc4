//! Child processes that die with their handle, or with the test process.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// A spawned child whose stdout lines are forwarded to a channel and a log file, whose stderr
/// goes to a log file, and which is SIGKILLed on drop.
#[derive(Debug)]
pub(crate) struct Managed {
    name: String,
    child: Option<Child>,
    watchdog: Option<Child>,
    lines: Option<Mutex<mpsc::Receiver<String>>>,
    stdout_log: PathBuf,
    stderr_log: PathBuf,
}

impl Managed {
    /// Spawns `cmd`. `stdin_pipe` keeps a pipe open to the child's stdin for as long as the
    /// handle lives (a child that exits on stdin EOF then dies with the test process too).
    /// If the test process dies without dropping the handle, a watchdog kills the child and
    /// removes `cleanup_dir` (a temp dir that its owner's drop would have removed).
    pub(crate) fn spawn(
        name: &str,
        mut cmd: Command,
        log_dir: &Path,
        stdin_pipe: bool,
        cleanup_dir: Option<&Path>,
    ) -> Result<Managed> {
        let stdout_log = log_dir.join(format!("{name}.stdout.log"));
        let stderr_log = log_dir.join(format!("{name}.stderr.log"));
        let stderr_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_log)
            .with_context(|| format!("cannot open {}", stderr_log.display()))?;
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_file))
            .stdin(if stdin_pipe {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot spawn {name}: {cmd:?}"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("{name}: no stdout pipe"))?;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stdout_log)
            .with_context(|| format!("cannot open {}", stdout_log.display()))?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("{name}-stdout"))
            .spawn(move || {
                let reader = BufReader::new(stdout);
                for line in reader.lines() {
                    let Ok(line) = line else { break };
                    let _ = writeln!(log, "{line}");
                    let _ = tx.send(line);
                }
            })
            .context("cannot start stdout reader thread")?;
        let watchdog = spawn_watchdog(child.id(), cleanup_dir).ok();
        Ok(Managed {
            name: name.to_string(),
            child: Some(child),
            watchdog,
            lines: Some(Mutex::new(rx)),
            stdout_log,
            stderr_log,
        })
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits for the first stdout line for which `pick` returns `Some`. Lines that do not match
    /// are skipped (they stay in the stdout log).
    pub(crate) fn wait_line<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        let rx = self
            .lines
            .as_mut()
            .ok_or_else(|| anyhow!("{}: stdout already consumed", self.name))?
            .get_mut()
            .map_err(|_| anyhow!("stdout channel poisoned"))?;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(v) = pick(&line) {
                        return Ok(v);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.try_status();
                    bail!(
                        "{} closed stdout before the expected line (exit: {status:?})\n{}",
                        self.name,
                        self.logs_tail()
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if Instant::now() >= deadline {
                bail!(
                    "{}: no expected stdout line after {timeout:?}\n{}",
                    self.name,
                    self.logs_tail()
                );
            }
        }
    }

    /// The exit status if the child has exited.
    pub(crate) fn try_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends SIGKILL and reaps the child.
    pub(crate) fn kill9(&mut self) -> Option<ExitStatus> {
        let status = self.child.take().and_then(|mut c| {
            let _ = c.kill();
            c.wait().ok()
        });
        self.stop_watchdog();
        status
    }

    /// Sends SIGTERM (with the `kill` command) and waits up to `grace` for the exit; SIGKILL
    /// after that. Returns the exit status and whether it exited within the grace period.
    pub(crate) fn terminate(&mut self, grace: Duration) -> Result<(ExitStatus, bool)> {
        let Some(mut child) = self.child.take() else {
            bail!("{}: not running", self.name);
        };
        let pid = child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("cannot run kill")?;
        if !sent.success() {
            let _ = child.kill();
        }
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = child.try_wait().context("wait failed")? {
                self.stop_watchdog();
                return Ok((status, true));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let status = child.wait().context("wait failed")?;
                self.stop_watchdog();
                return Ok((status, false));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop_watchdog(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }

    /// The last lines of the stdout and stderr logs, for error messages.
    pub(crate) fn logs_tail(&self) -> String {
        format!(
            "--- {} stdout ({}) ---\n{}\n--- {} stderr ({}) ---\n{}",
            self.name,
            self.stdout_log.display(),
            tail(&self.stdout_log, 40),
            self.name,
            self.stderr_log.display(),
            tail(&self.stderr_log, 60)
        )
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The last `n` lines of a file (empty if unreadable).
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

/// A `sh` loop that, once this test process is gone, SIGKILLs `child` if it is still the same
/// process (same start time, so a reused pid is never hit), then removes `cleanup_dir` if it is
/// a `portcullis-` temp dir.
fn spawn_watchdog(child: u32, cleanup_dir: Option<&Path>) -> Result<Child> {
    const SCRIPT: &str = r#"p="$1"; c="$2"; d="$3"
st=$(cut -d' ' -f22 "/proc/$c/stat" 2>/dev/null)
while kill -0 "$p" 2>/dev/null; do sleep 1; done
if [ -n "$st" ]; then
  now=$(cut -d' ' -f22 "/proc/$c/stat" 2>/dev/null)
  [ "$now" = "$st" ] && kill -9 "$c" 2>/dev/null
fi
case "$d" in
  */portcullis-*) sleep 1; rm -rf -- "$d" ;;
esac
exit 0"#;
    let dir = cleanup_dir
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    Command::new("sh")
        .args([
            "-c",
            SCRIPT,
            "portcullis-test-watchdog",
            &std::process::id().to_string(),
            &child.to_string(),
            &dir,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot spawn watchdog")
}
