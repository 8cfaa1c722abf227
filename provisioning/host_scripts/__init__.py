"""Programs Herd runs on a server's host (standard-library Python only, as
the host has nothing else for certain); passed to `python3 -c`."""

from pathlib import Path


def source(name: str) -> str:
    return (Path(__file__).parent / f"{name}.py").read_text()
