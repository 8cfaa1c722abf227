"""What the machine running test hosts must have, checked before a fleet starts.

A missing tool fails the fleet with the Debian package that provides it, so a
fresh machine tells the person running the tests what to install instead of
failing deep inside sshd or Ansible.
"""

from __future__ import annotations

import os
from pathlib import Path

# (path, Debian package). The hosts share /usr with this machine, so what the
# playbooks expect a Debian host to have (sudo for become, git for the
# checkout, sftp for Ansible's file transfers) must be installed here.
REQUIRED_FILES: tuple[tuple[str, str], ...] = (
    ("/usr/sbin/sshd", "openssh-server"),
    ("/usr/lib/openssh/sftp-server", "openssh-sftp-server"),
    ("/usr/bin/ssh", "openssh-client"),
    ("/usr/bin/ssh-keygen", "openssh-client"),
    ("/usr/bin/unshare", "util-linux"),
    ("/usr/bin/nsenter", "util-linux"),
    ("/usr/bin/setpriv", "util-linux"),
    ("/usr/bin/python3", "python3"),
    ("/usr/bin/git", "git"),
    ("/usr/bin/sudo", "sudo"),
)


class HostRequirementError(RuntimeError):
    """The machine cannot run test hosts; the message says what to do."""


def check_requirements() -> None:
    problems: list[str] = []
    if os.geteuid() != 0:
        problems.append("test hosts need root (mount and PID namespaces, overlay mounts)")
    missing = sorted({pkg for path, pkg in REQUIRED_FILES if not Path(path).exists()})
    if missing:
        problems.append(
            f"missing Debian package(s): {', '.join(missing)} "
            f"(apt-get install -y {' '.join(missing)})"
        )
    if "overlay" not in Path("/proc/filesystems").read_text():
        problems.append("the kernel has no overlay file system (modprobe overlay)")
    if problems:
        raise HostRequirementError("cannot start test hosts: " + "; ".join(problems))
