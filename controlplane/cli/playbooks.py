"""`herd playbooks`: pull an organisation's signed playbook bundle, verify
it, and report a run back. Talks to Herd at HERD_API_URL with HERD_API_TOKEN
(a token with the `playbooks` scope)."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from controlplane.bundles import signing
from controlplane.bundles.archive import UnsafeBundle, read_folder, read_tar_gz, write_folder
from controlplane.bundles.manifest import MANIFEST, BundleInvalid, Verified, verify
from controlplane.bundles.recap import parse_recap, status_of
from controlplane.cli.client import ApiClient
from controlplane.problems import InvalidInput

app = typer.Typer(help="Signed playbook bundles (support contracts).", no_args_is_help=True)

Url = Annotated[str | None, typer.Option(help="Herd's base URL (HERD_API_URL).")]
Token = Annotated[str | None, typer.Option(help="API token (HERD_API_TOKEN).")]
PublicKeyFile = Annotated[
    Path | None,
    typer.Option(
        "--public-key",
        help="A pinned public key (PEM) to verify with; default: the one Herd publishes.",
        exists=True,
        dir_okay=False,
    ),
]


def _base(url: str | None) -> str:
    return (url or os.environ.get("HERD_API_URL", "http://127.0.0.1:8000")).rstrip("/") + "/api/v1"


def _fail(message: str) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(1)


def _problem(response: httpx.Response) -> typer.Exit:
    try:
        problem = json.loads(response.read())
        message = f"{problem.get('title')}: {problem.get('detail')} ({problem.get('type')})"
    except ValueError:
        message = response.text[:200]
    return _fail(f"error {response.status_code}: {message}")


def _public_key(public_key: Path | None, url: str | None) -> Ed25519PublicKey:
    if public_key is not None:
        try:
            return signing.load_public_key(public_key.read_bytes())
        except signing.BadSignature as exc:
            raise _fail(f"{public_key}: {exc}") from exc
    response = httpx.get(_base(url) + "/playbooks/signing-key", timeout=30)
    if not response.is_success:
        raise _problem(response)
    return signing.load_public_key(response.json()["public_key_pem"])


def _verified(files: dict[str, bytes], key: Ed25519PublicKey) -> Verified:
    try:
        return verify(files, key)
    except BundleInvalid as exc:
        raise _fail(f"verification failed: {exc}") from exc


def _download(url: str | None, token: str | None, org: uuid.UUID, body: dict[str, Any]) -> bytes:
    token = token or os.environ.get("HERD_API_TOKEN")
    if not token:
        raise typer.BadParameter("set HERD_API_TOKEN (a token with the playbooks scope)")
    chunks = []
    with (
        httpx.Client(base_url=_base(url), timeout=120) as http,
        http.stream(
            "POST",
            f"/organisations/{org}/playbooks/bundle",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
    ):
        if not response.is_success:
            raise _problem(response)
        total = int(response.headers.get("Content-Length", 0)) or None
        columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with Progress("bundle", *columns, transient=True) as progress:
            task = progress.add_task("download", total=total)
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                progress.update(task, advance=len(chunk))
    return b"".join(chunks)


def _summary(verified: Verified) -> str:
    manifest = verified.manifest
    return (
        f"bundle {manifest['bundle_version']} for {manifest['organisation']['slug']}: "
        f"{verified.files} files, {len(manifest['servers'])} servers, "
        f"secrets {manifest['secrets']}; signed by {verified.fingerprint}; "
        f"Mastodon {', '.join(manifest['mastodon_releases'])}"
    )


@app.command()
def pull(
    org: Annotated[uuid.UUID, typer.Argument(help="The organisation's id.")],
    out: Annotated[Path, typer.Option(help="A new or empty folder to unpack into.")],
    include_secrets: Annotated[
        bool, typer.Option(help="Include the servers' secrets, vault-encrypted.")
    ] = False,
    vault_passphrase_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding the vault passphrase (as ansible-playbook's "
            "--vault-password-file reads it).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    public_key: PublicKeyFile = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Download the organisation's bundle, verify its signature and every
    checksum, and only then unpack it into OUT."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise typer.BadParameter(f"{out} is not an empty folder", param_hint="--out")
    body: dict[str, Any] = {}
    if include_secrets:
        if vault_passphrase_file is None:
            raise typer.BadParameter("--include-secrets needs --vault-passphrase-file")
        # Stripped as ansible-playbook strips a --vault-password-file.
        body = {
            "include_secrets": True,
            "vault_passphrase": vault_passphrase_file.read_text().strip(),
        }
    elif vault_passphrase_file is not None:
        raise typer.BadParameter("--vault-passphrase-file is used with --include-secrets")
    key = _public_key(public_key, url)
    data = _download(url, token, org, body)
    try:
        files = read_tar_gz(data)
        verified = _verified(files, key)
        write_folder(out, files)
    except UnsafeBundle as exc:
        raise _fail(f"refused: {exc}") from exc
    typer.echo(f"verified {_summary(verified)}")
    typer.echo(f"unpacked into {out}; run e.g. `ansible-playbook -i inventory upgrade.yml`")


@app.command("verify")
def verify_folder(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    public_key: PublicKeyFile = None,
    url: Url = None,
) -> None:
    """Check an unpacked bundle: the signature, every listed file's
    checksum, and that no file is there that the manifest does not list."""
    key = _public_key(public_key, url)
    try:
        files = read_folder(folder)
    except UnsafeBundle as exc:
        raise _fail(f"verification failed: {exc}") from exc
    typer.echo(f"verified {_summary(_verified(files, key))}")


def _time(value: str | None, fallback: datetime | None) -> str | None:
    if value is None:
        return fallback.isoformat() if fallback else None
    return datetime.fromisoformat(value).isoformat()


@app.command()
def report(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="The bundle.")],
    playbook: Annotated[str, typer.Option(help="The playbook that ran, e.g. upgrade.yml.")],
    log: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="ansible-playbook's output.")
    ],
    started: Annotated[str | None, typer.Option(help="ISO time the run started.")] = None,
    finished: Annotated[
        str | None, typer.Option(help="ISO time the run finished (default: the log's mtime).")
    ] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Send a run's PLAY RECAP to Herd, for the organisation the bundle in
    FOLDER was pulled for."""
    manifest = json.loads((folder / MANIFEST).read_text())
    try:
        hosts = parse_recap(log.read_text(errors="replace"))
    except InvalidInput as exc:
        raise _fail(f"{log}: {exc.detail}") from exc
    body = {
        "playbook": playbook,
        "status": status_of(hosts),
        "bundle_version": manifest["bundle_version"],
        "started_at": _time(started, None),
        "finished_at": _time(finished, datetime.fromtimestamp(log.stat().st_mtime, UTC)),
        "hosts": hosts,
    }
    client = ApiClient(url, token)
    try:
        organisation = manifest["organisation"]["id"]
        stored = client.post(f"/organisations/{organisation}/playbooks/reports", body)
    finally:
        client.close()
    typer.echo(f"reported {playbook} ({stored['status']}, {len(hosts)} hosts): {stored['id']}")
