"""The bundle as a tar.gz, and as a folder: written the same way every time
(sorted entries, fixed owner and times), read back without trusting it.

Reading never extracts: the archive's regular files are read into memory
(a bundle is a few hundred KiB) and checked against the signed manifest, and
only then written out, by `write_folder`, under names it has checked.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

# 2000-01-01T00:00:00Z: any fixed time does; this one no tool mistakes for unset.
FIXED_MTIME = 946684800
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
# Files that hold secrets stay private to the user who unpacks them.
VAULT_FILE = "vault.yml"


class UnsafeBundle(ValueError):
    """An archive or folder holding what no bundle holds (links, devices,
    names outside the folder)."""


def _mode(path: str) -> int:
    private = path.startswith("inventory/host_vars/") and path.endswith("/" + VAULT_FILE)
    return 0o600 if private else 0o644


def _checked(name: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or name.startswith("./") or not path.parts:
        raise UnsafeBundle(f"the bundle names a file outside its folder: {name!r}")
    return str(path)


def write_tar_gz(files: Mapping[str, bytes]) -> bytes:
    """Entries sorted, directories implied, owner root, mtime fixed: the same
    files give the same bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(_checked(name))
            info.size = len(data)
            info.mtime = FIXED_MTIME
            info.mode = _mode(name)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def read_tar_gz(data: bytes) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            total = 0
            for member in tar:
                name = _checked(member.name)
                if member.isdir():
                    continue
                if not member.isreg():
                    raise UnsafeBundle(f"{name} is not a regular file (links are refused)")
                total += member.size
                if total > MAX_BUNDLE_BYTES:
                    raise UnsafeBundle("the bundle unpacks to more than 64 MiB")
                if name in files:
                    raise UnsafeBundle(f"{name} appears twice in the archive")
                handle = tar.extractfile(member)
                assert handle is not None
                files[name] = handle.read()
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, OSError) as exc:
        raise UnsafeBundle(f"the download is not a readable tar.gz ({exc})") from exc
    return files


def read_folder(folder: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for root, dirs, names in os.walk(folder):
        for name in [*dirs, *names]:
            path = Path(root) / name
            mode = path.lstat().st_mode
            relative = path.relative_to(folder).as_posix()
            if stat.S_ISLNK(mode) or not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise UnsafeBundle(f"{relative} is not a regular file (links are refused)")
            if stat.S_ISREG(mode):
                files[relative] = path.read_bytes()
    return files


def write_folder(folder: Path, files: Mapping[str, bytes]) -> None:
    """Write checked files into a new or empty folder."""
    if folder.exists() and any(folder.iterdir()):
        raise UnsafeBundle(f"{folder} is not empty: unpack a bundle into a new folder")
    folder.mkdir(parents=True, exist_ok=True)
    for name in sorted(files):
        target = folder / _checked(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _mode(name))
        with os.fdopen(fd, "wb") as handle:
            handle.write(files[name])
