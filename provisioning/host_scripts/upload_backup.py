"""Upload every file under a folder to S3 through a presigned POST.

    HERD_BACKUP_UPLOAD='{"url": ..., "fields": {...}, "prefix": "final/"}' \
        python3 upload_backup.py FOLDER

The POST policy, signed by Herd, allows writing keys under one prefix of one
bucket for a limited time and nothing else: no credential of any kind is
handed to the host. Files are streamed, not read into memory.
"""

import json
import os
import sys
import urllib.request
import uuid

CHUNK = 1 << 20


def _part(boundary: str, name: str, value: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
    ).encode()


def upload(spec: dict, path: str, key: str) -> None:
    boundary = uuid.uuid4().hex
    head = b"".join(_part(boundary, k, v) for k, v in {**spec["fields"], "key": key}.items())
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{os.path.basename(path)}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = os.path.getsize(path)

    def body():
        yield head
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk
        yield tail

    url = spec["url"]
    if not url.startswith(("https://", "http://")):
        raise SystemExit(f"not an HTTP URL: {url}")
    request = urllib.request.Request(  # noqa: S310 (checked above)
        url,
        data=body(),
        method="POST",
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail)),
        },
    )
    with urllib.request.urlopen(request, timeout=3600) as response:  # noqa: S310 (Herd's URL)
        if response.status >= 300:
            raise SystemExit(f"upload of {key} answered {response.status}")


def main() -> None:
    spec = json.loads(os.environ["HERD_BACKUP_UPLOAD"])
    root = sys.argv[1]
    count = 0
    for folder, _dirs, names in os.walk(root):
        for name in sorted(names):
            path = os.path.join(folder, name)
            key = spec["prefix"] + os.path.relpath(path, root).replace(os.sep, "/")
            upload(spec, path, key)
            count += 1
    print(f"uploaded {count} file(s) under {spec['prefix']}")


if __name__ == "__main__":
    main()
