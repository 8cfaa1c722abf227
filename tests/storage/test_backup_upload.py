"""A host uploads its backup through a presigned POST: no credential on
the host, and only under the prefix Herd signed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from controlplane.storage import ensure_server_storage
from controlplane.storage.uploads import presigned_backup_upload
from provisioning.host_scripts import source
from tests.moto import Moto


def test_the_host_script_uploads_every_file_under_the_prefix(moto: Moto, tmp_path: Path) -> None:
    settings = moto.settings()
    grant = ensure_server_storage(uuid.uuid4(), None, settings=settings)
    folder = tmp_path / "final"
    (folder / "media").mkdir(parents=True)
    (folder / "database.dump").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    (folder / "env.production").write_text("LOCAL_DOMAIN=city\n")
    (folder / "media" / "a.png").write_bytes(b"\x89PNG")
    spec = presigned_backup_upload(settings, grant.backups_bucket, "final/")
    assert set(spec) == {"url", "fields", "prefix"}
    assert moto.admin_secret not in json.dumps(spec)

    # moto cannot check a POST policy's signature (it answers 500 to a form
    # upload while it enforces IAM), so its checks are paused for the upload;
    # real S3 verifies the policy and its prefix condition.
    httpx.post(f"{moto.url}/moto-api/reset-auth", content=b"100").raise_for_status()
    result = subprocess.run(  # the program as the host runs it: python3 -c, stdlib only
        [sys.executable, "-I", "-c", source("upload_backup"), str(folder)],
        env={"HERD_BACKUP_UPLOAD": json.dumps(spec), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "uploaded 3 file(s) under final/" in result.stdout
    s3 = moto.admin("s3")
    listed = s3.list_objects_v2(Bucket=grant.backups_bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        "final/database.dump",
        "final/env.production",
        "final/media/a.png",
    ]
    stored = s3.get_object(Bucket=grant.backups_bucket, Key="final/database.dump")["Body"].read()
    assert stored == (folder / "database.dump").read_bytes()
