"""Reading the report playbooks/backups.yml prints into a list of backups.

The playbook measures files and reads only the manifests; the folder name
is the backup's label (mastodon_backup names the folder after it), and a
folder without a readable manifest is a backup that did not finish.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

# The key of the message backups.yml's last task prints.
REPORT = "herd_backups"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class HostBackup:
    label: str
    # The release the backup was taken at (`git describe`), "" when unknown.
    version: str
    commit: str
    taken_at: datetime
    size_bytes: int
    files: tuple[str, ...]
    # False when the manifest is missing: the backup did not finish.
    complete: bool
    # Copied elsewhere by the role's upload command.
    uploaded: bool

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "taken_at": self.taken_at.isoformat(), "files": list(self.files)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HostBackup:
        return cls(
            label=str(data["label"]),
            version=str(data.get("version", "")),
            commit=str(data.get("commit", "")),
            taken_at=datetime.fromisoformat(str(data["taken_at"])),
            size_bytes=int(data.get("size_bytes", 0)),
            files=tuple(str(f) for f in data.get("files", [])),
            complete=bool(data.get("complete", False)),
            uploaded=bool(data.get("uploaded", False)),
        )


def parse_manifest(raw: object) -> dict[str, Any] | None:
    """A manifest's fields, or None when it is absent or not a JSON object.
    Ansible may hand the text over already decoded: a dict is taken as is."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, (str, bytes)):
        return None
    try:
        manifest = json.loads(raw)
    except ValueError:
        return None
    return manifest if isinstance(manifest, dict) else None


def manifest_time(manifest: Mapping[str, Any] | None) -> datetime | None:
    text = str((manifest or {}).get("taken_at") or "")
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_report(result: Mapping[str, Any]) -> list[HostBackup] | None:
    """The backups in a task event's result when it is backups.yml's report
    (newest first), else None."""
    msg = result.get("msg")
    report = msg.get(REPORT) if isinstance(msg, dict) else None
    if not isinstance(report, dict):
        return None
    files = list(zip(report.get("files", []), report.get("sizes", []), strict=True))
    manifests = dict(
        zip(report.get("manifest_paths", []), report.get("manifests", []), strict=True)
    )
    backups = []
    for folder, mtime in zip(
        report.get("folders", []), report.get("folder_times", []), strict=True
    ):
        folder = str(folder)
        inside = [
            (posixpath.relpath(path, folder), int(size))
            for path, size in files
            if str(path).startswith(folder + "/")
        ]
        names = {name for name, _ in inside}
        manifest = parse_manifest(manifests.get(posixpath.join(folder, MANIFEST)))
        listed = (manifest or {}).get("files")
        backups.append(
            HostBackup(
                label=posixpath.basename(folder),
                version=str((manifest or {}).get("version", "")),
                commit=str((manifest or {}).get("commit", "")),
                taken_at=manifest_time(manifest) or datetime.fromtimestamp(float(mtime), UTC),
                size_bytes=sum(size for _, size in inside),
                files=tuple(str(f) for f in listed)
                if isinstance(listed, list)
                else tuple(sorted(names - {MANIFEST})),
                complete=manifest is not None,
                uploaded="uploaded" in names,
            )
        )
    return sorted(backups, key=lambda b: (b.taken_at, b.label), reverse=True)
