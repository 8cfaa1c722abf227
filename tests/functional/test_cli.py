"""The `herd` command: staff bootstrap, and `herd serve` as a real process."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from controlplane.cli.main import app
from tests.hosts.process import children_of


def test_staff_create_prints_a_working_staff_token(client, herd_env: Path) -> None:
    result = CliRunner().invoke(
        app, ["staff", "create", "--email", "Ops@Provider.example-herd.org", "--role", "operator"]
    )
    assert result.exit_code == 0, result.output
    token = result.output.strip().rsplit(" ", 1)[-1]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["email"] == "ops@provider.example-herd.org"
    assert me["staff_role"] == "operator"
    assert (
        client.get("/api/v1/hosts", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )


def test_staff_create_refuses_bad_input(herd_env: Path) -> None:
    runner = CliRunner()
    assert (
        runner.invoke(app, ["staff", "create", "--email", "x@y.org", "--role", "king"]).exit_code
        == 2
    )
    assert runner.invoke(app, ["staff", "create", "--email", "not-mail"]).exit_code == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_herd_serve_runs_api_and_worker_on_embedded_defaults(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERD_")}
    env.update(HERD_DATA_DIR=str(tmp_path / "data"), HERD_PORT=str(port))
    log_path = tmp_path / "serve.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "controlplane.cli.main", "serve"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        assert ready is not None
        assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
        key = tmp_path / "data" / "secret.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert (tmp_path / "data" / "herd.sqlite3").exists()
        assert (tmp_path / "data" / "broker.sqlite3").exists()
        spec = httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()
        assert "/api/v1/organisations/{org_id}/servers" in spec["paths"]
        # The worker beside the API reports ready on the embedded broker.
        while time.monotonic() < deadline and " ready." not in log_path.read_text():
            time.sleep(0.3)
        assert "celery@" in log_path.read_text()
        assert " ready." in log_path.read_text()

        # A worker that dies (as one does when its broker goes with a task
        # unacknowledged; here killed outright) is started again by serve,
        # and what it leaves behind (its embedded beat) goes with it.
        first = children_of(process.pid)
        assert len(first) == 1, first
        left_behind = children_of(first[0])
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and log_path.read_text().count(" ready.") < 2:
            time.sleep(0.3)
        assert "the worker exited (status -9); starting it again" in log_path.read_text()
        assert log_path.read_text().count(" ready.") == 2
        second = children_of(process.pid)
        assert len(second) == 1, second
        assert second != first
        assert not [pid for pid in first + left_behind if _alive(pid)]
        second += children_of(second[0])
    finally:
        # To serve alone: stopping it must stop its worker (in a process
        # group of its own) and start no other.
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log.close()
    assert process.returncode == 0
    assert not [pid for pid in second if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
