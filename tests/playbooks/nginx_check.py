"""Check that the nginx vhost template renders to a configuration nginx accepts.

Renders templates/etc/nginx/sites-available/mastodon.conf.j2 with plain
Jinja2 (render.py) for a few variants, two servers side by side (as two
tenants on one host), points them at a self-signed certificate made with
openssl, wraps them in a minimal nginx.conf and runs `nginx -t` on it. Needs
the nginx and openssl binaries; writes only into a temporary folder.

    python tests/playbooks/nginx_check.py          # exit 0 when nginx accepts all variants
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from provisioning.render import render
from tests.playbooks.samples import sample_vars

VHOST = "etc/nginx/sites-available/mastodon.conf.j2"

VARIANTS: dict[str, list[dict[str, Any]]] = {
    "two servers on one host": [
        {},
        {
            "mastodon_service_name": "mastodon1",
            "mastodon_user": "mastodon1",
            "mastodon_live_dir": "/home/mastodon1/live",
            "mastodon_local_domain": "chat.example.net",
            "mastodon_alternate_domains": [],
            "mastodon_web_port": 3001,
            "mastodon_streaming_ports": [4001],
        },
    ],
    "web domain, no IPv6, maintenance text": [
        {
            "mastodon_web_domain": "mastodon.example.org",
            "mastodon_nginx_ipv6": False,
            "mastodon_streaming_ports": [4000, 4001, 4002, 4003],
        }
    ],
    # `http2 on;` exists from nginx 1.25.1; older ones need `listen ... http2`.
    "http2 directive (nginx >= 1.25.1)": [{"mastodon_nginx_http2_on": True}],
}


def nginx_version() -> tuple[int, ...]:
    result = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, check=False)
    text = (result.stderr or result.stdout).strip()
    return tuple(int(part) for part in text.rpartition("/")[2].split(".")[:3])


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if found is None:
        raise SystemExit("nginx is not installed")
    return found


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    openssl = shutil.which("openssl") or "/usr/bin/openssl"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=herd-nginx-check",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def check(servers: list[dict[str, Any]], folder: Path) -> subprocess.CompletedProcess[str]:
    """Render `servers` (overrides of the sample variables) and run nginx -t."""
    folder.mkdir(parents=True, exist_ok=True)
    # nginx creates a cache folder but not its parents (the role makes them).
    (folder / "cache").mkdir(exist_ok=True)
    cert, key = self_signed(folder)
    includes = []
    for number, overrides in enumerate(servers):
        name = overrides.get("mastodon_service_name", "mastodon0")
        values = sample_vars(
            mastodon_nginx_tls_certificate=str(cert),
            mastodon_nginx_tls_certificate_key=str(key),
            mastodon_nginx_cache_dir=str(folder / "cache" / name),
            mastodon_maintenance_dir=str(folder / "maintenance" / name),
            mastodon_maintenance_flag=str(folder / "maintenance" / name / "maintenance.on"),
            **overrides,
        )
        vhost = folder / f"vhost{number}.conf"
        vhost.write_text(render(VHOST, values))
        includes.append(f"    include {vhost};")
    mime = Path("/etc/nginx/mime.types")
    conf = folder / "nginx.conf"
    conf.write_text(
        "\n".join(
            [
                f"pid {folder}/nginx.pid;",
                f"error_log {folder}/error.log;",
                "events { worker_connections 64; }",
                "http {",
                f"    include {mime};" if mime.exists() else "",
                f"    access_log {folder}/access.log;",
                f"    client_body_temp_path {folder}/body;",
                f"    proxy_temp_path {folder}/proxy;",
                f"    fastcgi_temp_path {folder}/fastcgi;",
                f"    uwsgi_temp_path {folder}/uwsgi;",
                f"    scgi_temp_path {folder}/scgi;",
                *includes,
                "}",
                "",
            ]
        )
    )
    return subprocess.run(
        [nginx_binary(), "-t", "-p", str(folder), "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )


def main() -> int:
    failures = 0
    with tempfile.TemporaryDirectory(prefix="herd-nginx-") as tmp:
        for number, (label, servers) in enumerate(VARIANTS.items()):
            if "1.25.1" in label and nginx_version() < (1, 25, 1):
                print(f"skip {label}: nginx {'.'.join(map(str, nginx_version()))}")
                continue
            result = check(servers, Path(tmp) / f"variant{number}")
            ok = result.returncode == 0
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {label}")
            if not ok or "warn" in result.stderr:
                print("     " + result.stderr.strip().replace("\n", "\n     "))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
