"""`herd worker` that dies like a machine losing power, on cue (tests only).

    python -m tests.e2e.crashing_worker CRASH_FILE worker --beat ...

CRASH_FILE lists step names, one a line. When this worker has run one of
them and is about to record it done (the worst moment: the work happened,
the checkpoint did not), it takes the name off the list and SIGKILLs its
whole process group. The next worker finds the step not done and runs it
again; the test then checks that nothing was made twice.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from controlplane.cli.main import app
from controlplane.jobs.models import JobStep, StepState
from provisioning import pipeline


def install(crash_file: Path) -> None:
    record = pipeline._mark_step

    def mark_step(engine: Engine, step_id: uuid.UUID, state: StepState, **values: Any) -> None:
        if state == StepState.done:
            with Session(engine) as session:
                step = session.get(JobStep, step_id)
            pending = crash_file.read_text().split()
            if step is not None and step.name in pending:
                pending.remove(step.name)
                crash_file.write_text("\n".join(pending))
                os.killpg(os.getpgrp(), signal.SIGKILL)
        record(engine, step_id, state, **values)

    pipeline._mark_step = mark_step


if __name__ == "__main__":
    install(Path(sys.argv[1]))
    app(sys.argv[2:], prog_name="herd")
