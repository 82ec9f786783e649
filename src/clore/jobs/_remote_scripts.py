"""The POSIX ``sh`` programs a job runs on its machine, built here and sent over SSH.

Real Clore images are Ubuntu with ``sh``; these use only POSIX ``sh`` plus what every such
image has (``setsid``, ``nohup``, ``tail -c``, ``head -c``, ``wc``, ``date +%s``, ``tar``),
and fall back where one is missing (job control for ``setsid``, whole-second sleeps for
fractional ones, sleep-counting for ``date +%s``).

A job's directory (``JOB_ROOT``, 0700) holds:

``stdout``, ``stderr``  the setup's and the command's output, appended as written
``exit_code``           written (atomically) once the job ended: the command's code, the
                        setup's when the setup failed, 137 when it was killed
``reason``              why it ended when not by itself ("setup failed with exit code 2",
                        "watchdog: no heartbeat for 60 s", "stopped")
``pid``                 the job's process group (its session leader, ``job.sh``)
``heartbeat``           rewritten by the runner; the watchdog ends the job when its content
                        has not changed for the heartbeat timeout
``stopping``            while a kill is under way: the reason it will record
``env.sh``, ``setup.sh``, ``run.sh``, ``job.sh``, ``watchdog.sh``, ``watchdog.pid``

Order of writes, so a reader is never misled: the logs are complete before ``exit_code``
appears; a killer writes ``stopping`` before signalling (``job.sh`` then records no code of
its own), and ``exit_code`` after the group is gone, then renames ``stopping`` to ``reason``.
"""

# The programs are %-formatted: their own braces and $((...)) stay readable.
# ruff: noqa: UP031
from __future__ import annotations

import math
import re
import secrets
import shlex
from collections.abc import Mapping, Sequence

__all__ = [
    "JOBS_DIR",
    "check_job_id",
    "download_command",
    "follow_command",
    "heartbeat_command",
    "launch_command",
    "launch_script",
    "read_log_command",
    "remote_path",
    "status_command",
    "stop_command",
    "upload_command",
]

#: Where jobs live on the machine, under the login's home.
JOBS_DIR = ".clore-jobs"
#: The exit code a killed job records (128 + SIGKILL, as shells report it).
KILLED = 137
#: Exit statuses of the launcher that say why it refused.
LAUNCH_RUNNING = 3
LAUNCH_FAILED = 4
#: Exit status of the follow loop when the job's processes are gone with no exit code.
FOLLOW_GONE = 3

_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# A nap of fractional seconds where sleep takes them, else a whole second.
_NAP = 'nap() { sleep "$1" 2>/dev/null || sleep 1; }\n'
# Is the process group $1 alive? (the job is its own session, so its group)
_ALIVE = 'alive() { [ -n "$1" ] && kill -s 0 -- "-$1" 2>/dev/null; }\n'
# End the job's group: $1 the reason, $2 the grace in tenths of a second. TERM, then KILL
# once the grace has passed; the exit code after the group is gone; never a second code.
_KILL_JOB = """\
kill_job() {
  [ -f exit_code ] && return 0
  printf '%%s\\n' "$1" > stopping
  if [ -f exit_code ]; then rm -f stopping; return 0; fi
  pg=$(cat pid 2>/dev/null)
  if alive "$pg"; then
    kill -s TERM -- "-$pg" 2>/dev/null
    i=0
    while alive "$pg" && [ "$i" -lt "$2" ]; do nap 0.1; i=$((i + 1)); done
    if alive "$pg"; then
      kill -s KILL -- "-$pg" 2>/dev/null
      i=0
      while alive "$pg" && [ "$i" -lt 50 ]; do nap 0.1; i=$((i + 1)); done
    fi
  fi
  if [ ! -f exit_code ]; then
    echo %(killed)d > exit_code.tmp && mv -f exit_code.tmp exit_code
  fi
  mv -f stopping reason
}
""" % {"killed": KILLED}


def check_job_id(job_id: str) -> str:
    """``job_id`` when it is safe as one path component (letters, digits, ``._-``)."""
    if not _JOB_ID.fullmatch(job_id):
        raise ValueError(
            f"job id {job_id!r}: use 1-128 letters, digits, '.', '_' or '-' (not first)"
        )
    return job_id


def remote_path(path: str) -> str:
    """``path`` as a shell word: ``~``/``~/x`` and relative paths are under ``$HOME``."""
    if not path or "\0" in path or "\n" in path:
        raise ValueError(f"remote path {path!r}: empty, or holds a NUL or a newline")
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        rest = path[2:].lstrip("/")
        return '"$HOME"' if not rest else f'"$HOME"/{shlex.quote(rest)}'
    if path.startswith("/"):
        return shlex.quote(path)
    return f'"$HOME"/{shlex.quote(path)}'


def _root(job_id: str) -> str:
    return f'"$HOME"/{JOBS_DIR}/{check_job_id(job_id)}'


def _heredoc(name: str, text: str) -> str:
    """``cat > name`` of ``text`` exactly (a delimiter that does not occur in it)."""
    while True:
        mark = f"CLORE_EOF_{secrets.token_hex(8)}"
        if mark not in text:
            break
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"cat > {name} <<'{mark}'\n{body}{mark}\n"


def _env_script(job_id: str, env: Mapping[str, str]) -> str:
    lines = [f"export CLORE_JOB_ID={shlex.quote(job_id)}"]
    for name, value in env.items():
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"env: {name!r} is not a variable name")
        if "\0" in value:
            raise ValueError(f"env: the value of {name} holds a NUL")
        lines.append(f"export {name}={shlex.quote(value)}")
    return "\n".join(lines) + "\n"


_JOB_SH = """\
# One job: setup, then the command, in the working directory; the exit code at the end.
# Its own names start with _clore_ (the job's env is sourced among them).
echo $$ > pid.tmp && mv -f pid.tmp pid
_clore_root=$(pwd)
_clore_dir=$_clore_work
unset _clore_work
_clore_finish() {
  [ -f "$_clore_root/stopping" ] && exit "$1"
  [ -n "$2" ] && printf '%s\\n' "$2" > "$_clore_root/reason"
  echo "$1" > "$_clore_root/exit_code.tmp" &&
    mv -f "$_clore_root/exit_code.tmp" "$_clore_root/exit_code"
  exit "$1"
}
if command -v bash >/dev/null 2>&1; then _clore_sh=bash; else _clore_sh=sh; fi
. "$_clore_root/env.sh"
cd "$_clore_dir" || _clore_finish 126 "cannot enter the working directory $_clore_dir"
if [ -f "$_clore_root/setup.sh" ]; then
  $_clore_sh "$_clore_root/setup.sh" </dev/null
  _clore_rc=$?
  [ "$_clore_rc" -eq 0 ] || _clore_finish "$_clore_rc" "setup failed with exit code $_clore_rc"
fi
$_clore_sh "$_clore_root/run.sh" </dev/null
_clore_finish $? ""
"""

_WATCHDOG_SH = (
    _NAP
    + _ALIVE
    + _KILL_JOB
    + """\
# Ends the job when the heartbeat file has not changed for $timeout seconds.
echo $$ > watchdog.pid
now() { date +%s 2>/dev/null; }
last=$(cat heartbeat 2>/dev/null)
since=$(now)
quiet=0
while :; do
  [ -f exit_code ] && exit 0
  nap 1
  current=$(cat heartbeat 2>/dev/null)
  if [ "$current" != "$last" ]; then
    last=$current; since=$(now); quiet=0
    continue
  fi
  quiet=$((quiet + 1))
  t=$(now)
  case "$t$since" in
    *[!0-9]*|'') age=$quiet ;;
    *) age=$((t - since)) ;;
  esac
  [ "$age" -ge "$timeout" ] && break
done
kill_job "watchdog: no heartbeat for $timeout s" "$grace"
"""
)


def launch_script(
    job_id: str,
    *,
    command: str,
    setup: str | None,
    env: Mapping[str, str],
    workdir: str,
    heartbeat_timeout: float | None,
    grace: float = 5.0,
) -> str:
    """The launcher: prepares the job's directory, starts the job (and its watchdog)
    detached in sessions of their own, waits for the job's pid and prints
    ``root=DIR`` and ``work=DIR`` (absolute). Exit 3: that job runs already; 4: cannot
    prepare."""
    if not command.strip():
        raise ValueError("command: empty")
    if heartbeat_timeout is not None and not heartbeat_timeout > 0:
        raise ValueError("heartbeat_timeout: must be positive (or None: no watchdog)")
    parts = [
        _ALIVE,
        f"root={_root(job_id)}\n",
        f"work={remote_path(workdir)}\n",
        """\
if [ -f "$root/pid" ] && [ ! -f "$root/exit_code" ] && alive "$(cat "$root/pid")"; then
  echo "job %(id)s already runs on this machine" >&2; exit %(running)d
fi
mkdir -p "$root" && chmod 700 "$root" && cd "$root" || {
  echo "cannot create the job directory $root" >&2; exit %(failed)d; }
mkdir -p "$work" && work=$(cd "$work" && pwd) || {
  echo "cannot create the working directory $work" >&2; exit %(failed)d; }
rm -f exit_code exit_code.tmp reason stopping pid pid.tmp watchdog.pid setup.sh watchdog.sh
: > stdout && : > stderr || exit %(failed)d
"""
        % {"id": job_id, "running": LAUNCH_RUNNING, "failed": LAUNCH_FAILED},
        "(umask 077\n" + _heredoc("env.sh", _env_script(job_id, env)) + ")\n",
        _heredoc("run.sh", command),
    ]
    if setup is not None and setup.strip():
        parts.append(_heredoc("setup.sh", setup))
    parts.append(_heredoc("job.sh", _JOB_SH))
    parts.append("echo start > heartbeat\n")
    if heartbeat_timeout is not None:
        seconds = max(1, round(heartbeat_timeout))
        tenths = max(1, round(grace * 10))
        parts.append(f"timeout={seconds}\ngrace={tenths}\n")
        parts.append(_heredoc("watchdog.sh", _WATCHDOG_SH))
    parts.append(
        """\
_clore_work=$work
export _clore_work
detach() {
  if command -v setsid >/dev/null 2>&1; then
    setsid nohup "$@" &
  else
    set -m; nohup "$@" & set +m
  fi
}
detach sh job.sh </dev/null >>stdout 2>>stderr
i=0
while [ ! -f pid ] && [ "$i" -lt 200 ]; do sleep 0.05 2>/dev/null || sleep 1; i=$((i + 1)); done
[ -f pid ] || { echo "the job did not start" >&2; exit %(failed)d; }
if [ -f watchdog.sh ]; then
  export timeout grace
  detach sh watchdog.sh </dev/null >/dev/null 2>&1
fi
printf 'root=%%s\\nwork=%%s\\n' "$root" "$work"
"""
        % {"failed": LAUNCH_FAILED}
    )
    return "".join(parts)


def launch_command(job_id: str) -> str:
    """The exec that reads the launcher from its input and runs it (not from ``-c``:
    commands and env values may be long)."""
    jobs = f'"$HOME"/{JOBS_DIR}'
    launcher = f"{jobs}/{check_job_id(job_id)}.launch"
    return (
        f"mkdir -p {jobs} && chmod 700 {jobs} && cat > {launcher} && "
        f"sh {launcher}; rc=$?; rm -f {launcher}; exit $rc"
    )


def heartbeat_command(root: str, token: str) -> str:
    """Replace the heartbeat's content (atomically) with ``token``."""
    q = shlex.quote(root)
    return (
        f"printf '%s\\n' {shlex.quote(token)} > {q}/heartbeat.tmp && "
        f"mv -f {q}/heartbeat.tmp {q}/heartbeat"
    )


def status_command(root: str) -> str:
    """Print ``found``, ``exit``, ``alive``, ``stopping`` and ``reason`` lines."""
    return (
        _ALIVE
        + f"cd {shlex.quote(root)} 2>/dev/null || {{ echo found=0; exit 0; }}\n"
        + """\
echo found=1
printf 'exit=%s\\n' "$(cat exit_code 2>/dev/null)"
if alive "$(cat pid 2>/dev/null)"; then echo alive=1; else echo alive=0; fi
[ -f stopping ] && echo stopping=1
printf 'reason=%s\\n' "$(head -n 1 reason 2>/dev/null)"
"""
    )


def stop_command(root: str, *, grace: float, reason: str) -> str:
    """End the job (TERM to its group, KILL after ``grace``), recording ``reason``."""
    tenths = max(1, round(grace * 10))
    return (
        _NAP
        + _ALIVE
        + _KILL_JOB
        + f"cd {shlex.quote(root)} 2>/dev/null || exit 0\n"
        + f"[ -f pid ] || exit 0\nkill_job {shlex.quote(reason)} {tenths}\n"
    )


def follow_command(
    stdout: str, stderr: str, root: str, offsets: tuple[int, int], poll: float
) -> str:
    """Stream both logs from ``offsets`` (stdout to stdout, stderr to stderr) until the
    exit code appears; exit 0 then, 3 when the job's processes are gone without one."""
    o1, o2 = offsets
    if o1 < 0 or o2 < 0:
        raise ValueError("offsets: must not be negative")
    if not 0 < poll <= 60:
        raise ValueError("poll: must be in (0, 60] seconds")
    return (
        _NAP
        + _ALIVE
        + f"out={shlex.quote(stdout)}\nerr={shlex.quote(stderr)}\n"
        + f"cd {shlex.quote(root)} || exit 2\n"
        + f"o1={int(o1)}\no2={int(o2)}\npoll={poll:g}\n"
        + """\
size() { s=$(wc -c < "$1" 2>/dev/null) && echo $s || echo 0; }
step() {
  s=$(size "$out")
  if [ "$s" -gt "$o1" ]; then
    tail -c +$((o1 + 1)) "$out" 2>/dev/null | head -c $((s - o1)); o1=$s
  fi
  s=$(size "$err")
  if [ "$s" -gt "$o2" ]; then
    tail -c +$((o2 + 1)) "$err" 2>/dev/null | head -c $((s - o2)) >&2; o2=$s
  fi
}
gone=0
while :; do
  if [ -f exit_code ]; then step; exit 0; fi
  step
  if alive "$(cat pid 2>/dev/null)"; then gone=0; else gone=$((gone + 1)); fi
  # gone for about two seconds: a killer writes the code just after the group ends
  if [ "$gone" -ge %(limit)d ] && [ ! -f exit_code ]; then step; exit %(gone)d; fi
  nap "$poll"
done
"""
        % {"gone": FOLLOW_GONE, "limit": max(2, math.ceil(2.0 / poll))}
    )


def read_log_command(path: str, offset: int) -> str:
    """The file's bytes from ``offset`` on."""
    if offset < 0:
        raise ValueError("offset: must not be negative")
    return f"tail -c +{int(offset) + 1} {shlex.quote(path)}"


def upload_command(remote_dir: str) -> str:
    """Extract a tar stream from the input into ``remote_dir`` (created)."""
    d = remote_path(remote_dir)
    return f"mkdir -p {d} && cd {d} && tar -x -f -"


MISSING_MARK = "clore-missing:"


def download_command(remote_dir: str, outputs: Sequence[str]) -> str:
    """A tar stream of the outputs that exist under ``remote_dir`` on the output; each
    missing one named on stderr as ``clore-missing:PATH``."""
    d = remote_path(remote_dir)
    names = " ".join(shlex.quote(o) for o in outputs)
    return (
        f"cd {d} || exit 2\nset --\n"
        f"for p in {names}; do\n"
        '  if [ -e "$p" ] || [ -L "$p" ]; then set -- "$@" "$p"; '
        f"else printf '{MISSING_MARK}%s\\n' \"$p\" >&2; fi\n"
        "done\n"
        '[ "$#" -eq 0 ] && exit 0\n'
        'exec tar -c -f - -- "$@"\n'
    )
