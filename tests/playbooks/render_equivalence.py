"""Check that Ansible's template module and plain Jinja2 render every host
template identically (the control plane previews and diffs with the latter).

Renders each template under templates/ with the sample variables twice: with
`ansible-playbook` on localhost (the template module, lstrip_blocks as the
roles set it) and with provisioning/render.py. Uses the ansible-playbook
installed beside the running Python.

    python -m tests.playbooks.render_equivalence    # exit 0 when all agree
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from provisioning.render import TEMPLATES, render, template_names
from tests.playbooks.samples import SAMPLE_VARS, sample_vars

PLAYBOOK = """\
- name: Render every template with the template module
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Render
      ansible.builtin.template:
        src: "{{ templates }}/{{ item }}"
        dest: "{{ out }}/{{ item | replace('/', '__') }}"
        mode: "0600"
        lstrip_blocks: true
      loop: "{{ names }}"
"""


def main() -> int:
    names = template_names()
    with tempfile.TemporaryDirectory(prefix="herd-render-") as tmp:
        folder = Path(tmp)
        (folder / "out").mkdir()
        (folder / "play.yml").write_text(PLAYBOOK)
        extra = {"templates": str(TEMPLATES), "out": str(folder / "out"), "names": names}
        (folder / "extra.json").write_text(json.dumps(extra))
        env = {
            **os.environ,
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        }
        # The ansible-playbook installed beside this Python (the venv's).
        playbook = str(Path(sys.executable).parent / "ansible-playbook")
        result = subprocess.run(
            [
                playbook,
                "-i",
                "localhost,",
                str(folder / "play.yml"),
                "-e",
                f"ansible_python_interpreter={sys.executable}",
                "-e",
                f"@{SAMPLE_VARS}",
                "-e",
                f"@{folder / 'extra.json'}",
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if result.returncode != 0:
            print(result.stdout[-3000:], result.stderr[-3000:])
            return 1
        failures = 0
        values = sample_vars()
        for name in names:
            ansible = (folder / "out" / name.replace("/", "__")).read_text()
            plain = render(name, values)
            if ansible == plain:
                print(f"same  {name}")
                continue
            failures += 1
            print(f"DIFF  {name}")
            sys.stdout.writelines(
                difflib.unified_diff(
                    plain.splitlines(True), ansible.splitlines(True), "jinja2", "ansible"
                )
            )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
