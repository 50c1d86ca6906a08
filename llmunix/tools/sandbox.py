"""The sandbox every process an agent causes runs in: bubblewrap on Linux.

What a sandboxed process sees: the project's workspace read-write; the configured read paths,
the system directories a program needs (/usr, /bin, /lib*, a few /etc files) and the Python that
runs llmunix read-only; a private /tmp with HOME in it; its own /proc (own PID namespace) and a
minimal /dev; no network unless allowed (own network namespace); an environment built from an
allow list. Nothing else of the machine exists in there: no /root, /home, /run, /var, no other
project, not the workspace's .git, agents/, system/ (unless a read path) or llmunix.toml.

When the call's main process exits, the sandbox's PID 1 exits and the kernel kills everything
left in its PID namespace, setsid or not; killing the bwrap process (timeout, Ctrl-C) does the
same, and --die-with-parent covers llmunix itself dying.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from llmunix.errors import SandboxUnavailable
from llmunix.workspace.config import secret_name

__all__ = ["ENV_ALLOW", "HOME", "HOW_TO_FIX", "Sandbox"]

# Variables every sandboxed process gets from llmunix's environment (when set), besides the
# names the user lists in `[sandbox] env`. LC_* are passed too.
ENV_ALLOW = ("PATH", "LANG", "LANGUAGE", "TERM", "TZ", "COLORTERM", "NO_COLOR")
HOME = "/tmp/home"  # inside the sandbox's private /tmp
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What dynamic linking, alternatives, users, locales, time zones, DNS and TLS need from /etc.
_ETC = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "timezone",
    "passwd", "group", "nsswitch.conf", "hosts", "host.conf", "resolv.conf", "gai.conf",
    "ssl", "ca-certificates", "ca-certificates.conf", "pki", "crypto-policies", "mime.types",
    "protocols", "services", "locale.alias", "locale.conf", "default/locale", "os-release",
    "debian_version", "magic", "terminfo", "inputrc",
)
# Folders of those that hold private keys: an empty read-only folder in their place (a process
# running as a user who may read them on the machine must not read them in the sandbox).
_ETC_HIDDEN = ("ssl/private", "pki/tls/private")
HOW_TO_FIX = ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf "
              "install bubblewrap), or set [sandbox] mode = \"off\" in llmunix.toml to run "
              "processes unconfined (unsafe)")


@dataclass(frozen=True)
class Sandbox:
    """How processes of one run are confined. Immutable: `with_network` and friends return a
    copy. `command()` turns an argv into the argv and environment to start it confined with."""

    workspace: Path
    read_paths: tuple[Path, ...] = ()
    network: bool = False
    env_names: tuple[str, ...] = ()
    mode: str = "bubblewrap"  # "bubblewrap" | "off"
    program: str = "bwrap"
    mask_links: bool = False  # hide the workspace's hard-linked files (masking_hard_links)
    # what the look for hard links found, shared by copies (`with_network`): made on first use
    _found: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def create(cls, workspace: Path | str, *, read_paths: Iterable[Path | str] = (),
               network: bool = False, env: Iterable[str] = (), mode: str = "bubblewrap",
               program: str = "bwrap") -> Sandbox:
        return cls(Path(os.path.realpath(workspace)),
                   tuple(Path(os.path.realpath(p)) for p in read_paths),
                   network, tuple(env), mode, program)

    def masking_hard_links(self) -> Sandbox:
        """A copy that hides every file of the workspace with more than one hard link (another
        name of it may be outside): inside the sandbox such a file cannot be opened. The model
        cannot make new ones (a link across the sandbox's mounts fails), so one look at the
        start of a run is enough; it is made when the first process starts."""
        return replace(self, mask_links=True)

    def with_network(self, allowed: bool) -> Sandbox:
        return self if allowed == self.network else replace(self, network=allowed)

    @property
    def confined(self) -> bool:
        return self.mode != "off"

    def describe(self) -> str:
        """One line for run headers and traces."""
        if not self.confined:
            return "off (UNSAFE: processes run unconfined, with llmunix's own file access)"
        return f"bubblewrap (network {'allowed' if self.network else 'off'})"

    # ------------------------------------------------------------------ availability

    def check(self) -> None:
        """Raise SandboxUnavailable, saying how to fix it, when processes cannot be confined.
        The probe (one `true` in a sandbox) runs once per program and is remembered."""
        if not self.confined:
            return
        error = probe(self.program)
        if error:
            raise SandboxUnavailable(error, hint=HOW_TO_FIX)

    # ------------------------------------------------------------------ building a command

    def environment(self, extra: Mapping[str, str] | None = None,
                    source: Mapping[str, str] | None = None) -> dict[str, str]:
        """The allow-listed environment: ENV_ALLOW, LC_*, the configured names (never one
        that looks secret), HOME in the sandbox, then `extra` (e.g. tool arguments)."""
        env_in = os.environ if source is None else source
        names = set(ENV_ALLOW) | {n for n in self.env_names if not secret_name(n)}
        env = {k: v for k, v in env_in.items() if k in names or k.startswith("LC_")}
        env["HOME"] = HOME if self.confined else env_in.get("HOME", HOME)
        if self.confined:
            env["TMPDIR"] = "/tmp"
        env.update(extra or {})
        return env

    def command(self, argv: Sequence[str], *, cwd: Path | str | None = None,
                env: Mapping[str, str] | None = None,
                read_only: Iterable[Path | str] = ()) -> tuple[list[str], dict[str, str]]:
        """(argv, env) that run `argv` confined, in `cwd` (default: the workspace).
        `read_only` adds folders the process may read (e.g. a tool spec's own folder)."""
        environment = self.environment(env)
        if not self.confined:
            return list(argv), environment
        cwd = Path(os.path.realpath(cwd or self.workspace))
        return [*self._bwrap_args(cwd, read_only), "--", *argv], environment

    def _bwrap_args(self, cwd: Path, read_only: Iterable[Path | str]) -> list[str]:
        args = [self.program, "--unshare-all", "--cap-drop", "ALL", "--die-with-parent",
                "--new-session"]
        if self.network:
            args.append("--share-net")
        for top in _SYSTEM_DIRS:
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        etc, folders = _etc_copy()
        args += ["--ro-bind", etc, "/etc"]
        for folder in folders:
            args += ["--ro-bind", folder, folder]
        for hidden in _ETC_HIDDEN:
            if os.path.isdir(f"/etc/{hidden}"):
                args += ["--tmpfs", f"/etc/{hidden}", "--remount-ro", f"/etc/{hidden}"]
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                 "--perms", "0700", "--dir", HOME]
        mounts: dict[str, bool] = {}  # path -> writable
        for path in (*_python_dirs(), *self.read_paths, *map(Path, read_only)):
            real = os.path.realpath(path)
            if os.path.exists(real) and not _under_system(real) and not any(
                    real.startswith(m + "/") for m in mounts):
                mounts.setdefault(real, False)
        mounts[str(self.workspace)] = True
        # Shorter paths first, so a deeper mount lands on top of the one that holds it.
        for path, writable in sorted(mounts.items(), key=lambda kv: (kv[0].count("/"), kv[1])):
            args += ["--bind" if writable else "--ro-bind", path, path]
        if self.mask_links:
            if "links" not in self._found:
                self._found["links"] = hard_links(self.workspace)
            for path in self._found["links"]:
                args += ["--ro-bind-try", "/dev/null", path]
        args += ["--chdir", str(cwd)]
        return args


def hard_links(folder: Path, limit: int = 200_000) -> list[str]:
    """Regular files below `folder` with more than one link (.git folders skipped; at most
    `limit` entries looked at)."""
    found, todo, seen = [], [str(folder)], 0
    while todo and seen < limit:
        try:
            entries = list(os.scandir(todo.pop()))
        except OSError:
            continue
        for entry in entries:
            seen += 1
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != ".git":
                        todo.append(entry.path)
                elif entry.is_file(follow_symlinks=False) and \
                        entry.stat(follow_symlinks=False).st_nlink > 1:
                    found.append(entry.path)
            except OSError:
                continue
    return sorted(found)


_etc_lock = threading.Lock()
_etc_made: list[tuple[str, tuple[str, ...]]] = []


def _etc_copy() -> tuple[str, tuple[str, ...]]:
    """A folder holding copies of the /etc files a program needs, made once per process and
    mounted as the sandbox's /etc: one mount instead of one per file (~5 ms a call). The
    folders among them (ssl, alternatives, ...: hundreds of symlinks, ~0.2 s to copy) are
    mounted on empty folders of the copy instead: (the copy, those folders)."""
    with _etc_lock:
        if _etc_made:
            return _etc_made[0]
        folder = tempfile.mkdtemp(prefix="llmunix-etc-")
        folders: list[str] = []
        atexit.register(shutil.rmtree, folder, True)
        for name in _ETC:
            source, target = f"/etc/{name}", os.path.join(folder, name)
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                if os.path.isdir(source):
                    os.mkdir(target)  # where the folder itself is mounted
                    folders.append(source)
                elif os.path.exists(source):
                    shutil.copy2(source, target)  # a symlink's target, e.g. resolv.conf
            except OSError:
                continue  # unreadable: the sandbox does without it
        os.chmod(folder, 0o755)
        _etc_made.append((folder, tuple(folders)))
        return _etc_made[0]


def _under_system(path: str) -> bool:
    return any(path == d or path.startswith(d + "/") for d in _SYSTEM_DIRS)


def _python_dirs() -> list[str]:
    """The Python running llmunix, so python tool specs (and `python` on PATH) work inside."""
    dirs = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    return sorted(dirs)


_probe_lock = threading.Lock()
_probe_results: dict[str, str] = {}


def probe(program: str) -> str:
    """'' when a bubblewrap sandbox starts with `program`, else why not (remembered in the
    process; a success also in the user's cache, see `_probe_stamp`)."""
    with _probe_lock:
        if program in _probe_results:
            return _probe_results[program]
        stamp = _probe_stamp(program)
        record = _probe_record() if stamp is not None else None
        if record is not None and _read_text(record) == stamp:
            error = ""
        else:
            error = _run_probe(program)
            if not error and record is not None:
                _write_text(record, stamp)
        _probe_results[program] = error
        return error


# What a probe's success depends on: the program (path, inode, size, time), the user, the boot,
# and the settings that allow or forbid user namespaces. Kept so that every llmunix process does
# not start a sandbox of its own first (~7 ms); a sandbox that stops working on the same stamp
# still fails with a clear message (process.py: _raise_start_failure). Failures are not kept.
_NAMESPACE_SETTINGS = ("/proc/sys/kernel/random/boot_id",
                       "/proc/sys/kernel/unprivileged_userns_clone",
                       "/proc/sys/user/max_user_namespaces",
                       "/proc/sys/kernel/apparmor_restrict_unprivileged_userns")


def _probe_stamp(program: str) -> str | None:
    found = shutil.which(program)
    if found is None or not sys.platform.startswith("linux"):
        return None
    try:
        real = os.path.realpath(found)
        st = os.stat(real)
    except OSError:
        return None
    parts = [real, str(st.st_ino), str(st.st_size), str(st.st_mtime_ns), str(os.getuid())]
    parts += [_read_text(name) or "-" for name in _NAMESPACE_SETTINGS]
    return "\n".join(parts) + "\n"


def _probe_record() -> str | None:
    """Where a success is kept; None when there is no absolute home for it (a relative path
    would put a cache folder wherever llmunix happens to run)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "llmunix", "sandbox-probe") if os.path.isabs(cache) else None


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(4096).strip() if path.startswith("/proc/") else f.read(4096)
    except (OSError, UnicodeDecodeError):
        return ""


def _write_text(path: str, text: str) -> None:
    """Best effort: an unwritable cache only means probing again next time."""
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".probe-")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _run_probe(program: str) -> str:
    if not sys.platform.startswith("linux"):
        return f"no sandbox for processes on {sys.platform} yet (bubblewrap needs Linux)"
    argv = [program, "--unshare-all", "--cap-drop", "ALL", "--die-with-parent",
            "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--", "true"]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=20,
                              env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    except FileNotFoundError:
        return f"the sandbox cannot start: bubblewrap ({program!r}) is not installed"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the sandbox cannot start: {program}: {exc}"
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = why[-1] if why else f"exit code {done.returncode}"
        return (f"the sandbox cannot start: {detail} (user namespaces may be disabled: "
                "sysctl kernel.unprivileged_userns_clone=1)")
    return ""
