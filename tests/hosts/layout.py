"""Where a test host's private files live on the real machine.

Each host has one folder (its root). Inside the host:

- /etc, /usr and /var are overlays: the real machine's files show through,
  and whatever the host writes lands in ``<root>/etc``, ``<root>/usr`` or
  ``<root>/var`` (the overlay's upper folder). Overlaying /usr and /var
  keeps an accidental package install inside the host instead of changing
  the machine the tests run on.
- /home, /opt, /srv, /root, /tmp and /usr/local/bin start empty and are
  bind mounts of ``<root>/home`` ... (``<root>/local-bin`` for
  /usr/local/bin, which holds the stand-in executables).
- /run is a tmpfs that lives as long as the host runs; /run/herd is the
  harness's own folder ``<root>/harness`` (sshd configuration and logs).
"""

from __future__ import annotations

import posixpath
from pathlib import Path

OVERLAYS: tuple[str, ...] = ("/etc", "/usr", "/var")

# Mounted in this order; /tmp last because the host roots usually lie in it.
BINDS: dict[str, str] = {
    "/home": "home",
    "/opt": "opt",
    "/srv": "srv",
    "/root": "root",
    "/usr/local/bin": "local-bin",
    "/tmp": "tmp",
}

HARNESS_DIR = "/run/herd"

# Created inside the host after the mounts: sshd's privilege separation
# folder, and /run/systemd/system, which Ansible reads as "systemd runs".
RUN_DIRS: tuple[str, ...] = (
    HARNESS_DIR,
    "/run/sshd",
    "/run/systemd/system",
    "/run/standin",
    "/run/lock",
    "/run/user",
)


class SharedPathError(ValueError):
    """The path is not private to the host: it is the real machine's file."""


def overlay_folder(target: str) -> str:
    return target.strip("/").replace("/", "-")


def private_folders() -> dict[str, str]:
    """Every private mount point and its folder under the root, longest first."""
    folders = {target: overlay_folder(target) for target in OVERLAYS}
    folders.update(BINDS)
    folders[HARNESS_DIR] = "harness"
    return dict(sorted(folders.items(), key=lambda item: len(item[0]), reverse=True))


def folder_for(root: Path, inner_path: str) -> Path | None:
    """The real path of ``inner_path`` in the host's folders, or None for /run."""
    if not inner_path.startswith("/"):
        raise ValueError(f"{inner_path!r}: a host path must be absolute")
    path = posixpath.normpath(inner_path)
    for mount_point, folder in private_folders().items():
        if path == mount_point or path.startswith(mount_point + "/"):
            return root / folder / path[len(mount_point) :].lstrip("/")
    if path == "/run" or path.startswith("/run/"):
        return None
    raise SharedPathError(f"{path} is not private to the host: it is this machine's own file")


def make_folders(root: Path) -> None:
    for target in OVERLAYS:
        for parent in (root, root / ".work"):
            (parent / overlay_folder(target)).mkdir(parents=True, exist_ok=True)
    for folder in BINDS.values():
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "harness").mkdir(exist_ok=True)
