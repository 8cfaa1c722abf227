"""The systemd units in deploy/systemd: systemd reads them without a warning,
and the commands they start are ones Herd's programs accept."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
INSTALLED_BIN = "/opt/herd/venv/bin/"
BIN = Path(sys.executable).parent


def _here(unit: Path, into: Path) -> Path:
    """The unit with this checkout's programs in place of /opt/herd's, so
    systemd can check that what it starts exists and is executable."""
    copy = into / unit.name
    copy.write_text(unit.read_text().replace(INSTALLED_BIN, f"{BIN}/"))
    return copy


def _value(unit: Path, key: str) -> str:
    values = [
        line.split("=", 1)[1]
        for line in unit.read_text().splitlines()
        if line.startswith(f"{key}=")
    ]
    assert len(values) == 1, (unit.name, key, values)
    return values[0]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_reads_the_units_without_a_warning(tmp_path: Path) -> None:
    units = sorted(UNITS.glob("*.service"))
    assert [u.name for u in units] == ["herd-api.service", "herd-worker.service"]
    copies = [str(_here(unit, tmp_path)) for unit in units]
    checked = subprocess.run(
        ["systemd-analyze", "verify", *copies], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr
    # Unknown keys and bad values are only warnings, with status 0.
    assert checked.stdout + checked.stderr == ""


@pytest.mark.parametrize(
    ("unit", "flags"), [("herd-api.service", ""), ("herd-worker.service", "--beat")]
)
def test_the_units_start_commands_the_programs_accept(unit: str, flags: str) -> None:
    path = UNITS / unit
    assert _value(path, "Restart") == "always"
    command = shlex.split(_value(path, "ExecStart").replace("$HERD_WORKER_FLAGS", flags))
    assert command[0].startswith(INSTALLED_BIN)
    program = BIN / command[0].removeprefix(INSTALLED_BIN)
    # --help after the unit's own options: an option the program does not
    # know is refused (status 2) before the help is printed.
    accepted = subprocess.run(
        [str(program), *command[1:], "--help"], capture_output=True, text=True, check=False
    )
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
