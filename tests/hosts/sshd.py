"""Keys and sshd configuration for test hosts."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from .layout import HARNESS_DIR

# Every host has the same throw-away host key and a new port each run, so
# host key checking can only get in the way.
SSH_COMMON_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
SSH_OPTIONS: tuple[str, ...] = tuple(SSH_COMMON_ARGS.split())


def generate_key(path: Path, comment: str) -> Path:
    """An ed25519 key pair without passphrase at ``path`` and ``path.pub``."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def sshd_config(port: int, marker: str) -> str:
    """The host's sshd configuration; paths are as seen inside the host.

    The configuration and keys live in /run/herd rather than /etc/ssh, so a
    playbook that rewrites /etc/ssh/sshd_config cannot lock the harness out.
    """
    return f"""\
# Written by the Herd test harness ({marker}).
Port {port}
ListenAddress 127.0.0.1
HostKey {HARNESS_DIR}/ssh_host_ed25519_key
PidFile /run/sshd.pid
# The harness key for root; any user's own ~/.ssh/authorized_keys as usual.
AuthorizedKeysFile {HARNESS_DIR}/authorized_keys.%u .ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
AcceptEnv LANG LC_*
# Ansible opens several connections at once; the defaults throttle them.
MaxStartups 100
MaxSessions 100
Subsystem sftp /usr/lib/openssh/sftp-server
"""


def read_banner(port: int, timeout: float) -> bool:
    """True once an SSH server greets on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            return conn.recv(8).startswith(b"SSH-")
    except OSError:
        return False
