"""The playbooks pass ansible-lint's production profile."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


def test_ansible_lint_production_profile_passes() -> None:
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [str(bin_dir / "ansible-lint"), "--offline", "--profile", "production", "--nocolor"],
        cwd=PLAYBOOKS,
        # ansible-lint runs ansible-playbook --syntax-check: the venv's.
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "0 failure(s), 0 warning(s)" in result.stdout + result.stderr
