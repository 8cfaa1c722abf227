"""Puts the Mastodon stand-in and the host's first files into a host's folders.

Runs on the harness side, before the host starts: everything is written into
the host's upper and bind folders, so it appears inside the host at the
paths a real Debian host with Mastodon's tools would have.
"""

from __future__ import annotations

import compileall
import shutil
from collections.abc import Sequence
from pathlib import Path

# Inside the host: the stand-in package (under the /usr overlay) and the
# folder where it keeps what it records.
STANDIN_LIB = "/usr/lib/herd-standin"
STANDIN_STATE = "/opt/standin"
STANDIN_LOGS = "/var/log/standin"

STANDIN_SOURCE = Path(__file__).with_name("standin")

# Executables on PATH (/usr/local/bin comes before /usr/bin for every user).
# The web, streaming and worker entries are what the fake systemctl runs
# for Mastodon's units.
LOCAL_BIN_TOOLS: tuple[str, ...] = (
    "bundle",
    "gem",
    "ruby",
    "rbenv",
    "ruby-build",
    "yarn",
    "corepack",
    "node",
    "tootctl",
    "systemctl",
    "journalctl",
    "mastodon-standin-web",
    "mastodon-standin-streaming",
    "mastodon-standin-worker",
)

# Also replaced at their absolute paths: Ansible's service_facts looks in
# /usr/bin first, and playbooks may call /bin/systemctl (/bin is /usr/bin).
USR_BIN_TOOLS: tuple[str, ...] = ("systemctl", "journalctl")


def wrapper_script(tool: str) -> str:
    """A tiny executable that hands over to the stand-in package as ``tool``."""
    # -I: no user site or PYTHON* variables from the caller; -S: no site
    # module at all (faster, and the stand-in needs the standard library only).
    return f"""#!/usr/bin/python3 -IS
# Herd test stand-in for `{tool}` (tests/hosts/standin): records the call
# in {STANDIN_STATE}/calls.jsonl, then behaves like the real tool would.
import sys

sys.path.insert(0, "{STANDIN_LIB}")
from standin.cli import main

sys.exit(main({tool!r}, sys.argv))
"""


def write_executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def build_standin_library(target: Path) -> Path:
    """Copy the stand-in package once per fleet, compiled, so hosts start fast.

    Unprivileged users cannot write __pycache__ inside a host, so without
    compiling here every stand-in call would compile its modules again.
    """
    package = target / "standin"
    if package.exists():
        shutil.rmtree(package)
    shutil.copytree(STANDIN_SOURCE, package, ignore=shutil.ignore_patterns("__pycache__"))
    compileall.compile_dir(package, quiet=1)
    return target


def install_standin(root: Path, library: Path) -> None:
    """Install the stand-in into one host's folders (``root`` is the host root)."""
    lib = root / "usr" / STANDIN_LIB.removeprefix("/usr/")
    if lib.exists():
        shutil.rmtree(lib)
    shutil.copytree(library, lib)
    for tool in LOCAL_BIN_TOOLS:
        write_executable(root / "local-bin" / tool, wrapper_script(tool))
    for tool in USR_BIN_TOOLS:
        write_executable(root / "usr" / "bin" / tool, wrapper_script(tool))
    state = root / "opt" / STANDIN_STATE.removeprefix("/opt/")
    state.mkdir(parents=True, exist_ok=True)
    # Any user may record a call; the web process (user mastodon) rewrites
    # the admin data, so no sticky bit either.
    state.chmod(0o777)
    calls = state / "calls.jsonl"
    calls.touch()
    calls.chmod(0o666)
    logs = root / "var" / STANDIN_LOGS.removeprefix("/var/")
    logs.mkdir(parents=True, exist_ok=True)
    logs.chmod(0o777)


def write_identity(root: Path, name: str, safe_directories: Sequence[str]) -> None:
    """/etc/hostname, /etc/hosts and /etc/gitconfig of the host."""
    etc = root / "etc"
    (etc / "hostname").write_text(name + "\n")
    hosts = Path("/etc/hosts").read_text()
    # sudo looks its own host name up; without this line it warns on every call.
    (etc / "hosts").write_text(hosts.rstrip("\n") + f"\n127.0.1.1 {name}\n")
    gitconfig = Path("/etc/gitconfig")
    text = gitconfig.read_text() if gitconfig.exists() else ""
    if safe_directories:
        # The fixture repositories belong to root; the mastodon user clones
        # them, which git refuses for another owner's repository unless the
        # system configuration names it safe.
        text += "[safe]\n" + "".join(f"\tdirectory = {d}\n" for d in safe_directories)
    (etc / "gitconfig").write_text(text)
