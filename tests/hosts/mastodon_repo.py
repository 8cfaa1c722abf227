"""A local bare git repository that looks enough like Mastodon for the playbooks.

Each release tag carries what the install and upgrade steps read:
``.ruby-version``, ``package.json`` (``packageManager: yarn@4.x``),
``Gemfile``/``Gemfile.lock``, ``yarn.lock``, ``lib/mastodon/version.rb``,
the ``dist/`` nginx and systemd files, and ``bin/rails``/``bin/tootctl``
stand-ins. Gemfile.lock and yarn.lock change with every release, so an
upgrade that skips ``bundle install`` fails as it would for real.

    repo = build_mastodon_repo(tmp_path / "mastodon.git")
    # playbook variable: mastodon_repository = repo.url (file://...)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import dist_files
from .install import wrapper_script

DEFAULT_TAGS: tuple[str, ...] = ("v4.4.0", "v4.4.8", "v4.5.0", "v4.5.1", "v4.5.2", "v4.6.0")

# Ruby per release: 3.4.x for 4.4 and 4.5, 4.0.x for 4.6; it changes inside
# a series too, so "rbenv install when .ruby-version changed" gets exercised.
RUBY_BY_TAG = {"v4.4.0": "3.4.4", "v4.4.8": "3.4.5"}
RUBY_BY_SERIES = {"4.4": "3.4.5", "4.5": "3.4.7", "4.6": "4.0.1"}
YARN_BY_SERIES = {"4.4": "yarn@4.9.2", "4.5": "yarn@4.10.3", "4.6": "yarn@4.12.0"}
# Mastodon reports api_versions.mastodon since 4.3 (7 in 4.5).
API_BY_SERIES = {"4.4": 6, "4.5": 7, "4.6": 8}

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Herd test fixture",
    "GIT_AUTHOR_EMAIL": "fixture@example.invalid",
    "GIT_COMMITTER_NAME": "Herd test fixture",
    "GIT_COMMITTER_EMAIL": "fixture@example.invalid",
}


def parse_tag(tag: str) -> tuple[int, int, int, str]:
    """(major, minor, patch, prerelease) of "v4.5.1" or "v4.6.0-rc.1"."""
    core, _, prerelease = tag.lstrip("v").partition("-")
    major, minor, patch = (int(p) for p in core.split("."))
    return major, minor, patch, prerelease


def series(tag: str) -> str:
    major, minor, _, _ = parse_tag(tag)
    return f"{major}.{minor}"


def ruby_version(tag: str) -> str:
    return RUBY_BY_TAG.get(tag) or RUBY_BY_SERIES.get(series(tag), "3.4.7")


def release_files(tag: str) -> dict[str, str]:
    """Path → content of the checkout at ``tag``."""
    major, minor, patch, prerelease = parse_tag(tag)
    version = tag.lstrip("v")
    return {
        ".ruby-version": ruby_version(tag) + "\n",
        "package.json": json.dumps(
            {
                "name": "@mastodon/mastodon",
                "license": "AGPL-3.0-or-later",
                "private": True,
                "packageManager": YARN_BY_SERIES.get(series(tag), "yarn@4.10.3"),
                "engines": {"node": ">=20"},
                "workspaces": [".", "streaming"],
            },
            indent=2,
        )
        + "\n",
        "yarn.lock": dist_files.yarn_lock(version),
        "Gemfile": dist_files.GEMFILE,
        "Gemfile.lock": dist_files.gemfile_lock(version, ruby_version(tag)),
        "lib/mastodon/version.rb": dist_files.version_rb(
            major, minor, patch, prerelease, API_BY_SERIES.get(series(tag), 7)
        ),
        "dist/nginx.conf": dist_files.NGINX_CONF,
        "dist/mastodon-web.service": dist_files.WEB_SERVICE,
        "dist/mastodon-sidekiq.service": dist_files.SIDEKIQ_SERVICE,
        "dist/mastodon-streaming.service": dist_files.STREAMING_SERVICE,
        "dist/mastodon-streaming@.service": dist_files.STREAMING_TEMPLATE,
        ".env.production.sample": dist_files.ENV_SAMPLE,
        "streaming/index.js": "// Stand-in: the test hosts run mastodon-standin-streaming.\n",
        "config/puma.rb": "# Stand-in: the test hosts run mastodon-standin-web.\n",
        "public/robots.txt": "User-agent: *\n",
        "bin/rails": wrapper_script("rails"),
        "bin/tootctl": wrapper_script("tootctl"),
    }


def _git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_IDENTITY, **(env or {})},
    )
    return result.stdout


@dataclass
class MastodonRepo:
    """The bare repository and the releases in it."""

    path: Path
    tags: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def add_release(self, tag: str) -> None:
        """Publish one more release tag (on top of the newest), like upstream would."""
        with tempfile.TemporaryDirectory() as work:
            tree = Path(work) / "tree"
            _git(Path(work), "clone", "--quiet", str(self.path), str(tree))
            _commit_release(tree, tag, len(self.tags))
            _git(tree, "push", "--quiet", "origin", "HEAD:main", f"refs/tags/{tag}")
        self.tags.append(tag)


def _commit_release(tree: Path, tag: str, index: int) -> None:
    for relative, text in release_files(tag).items():
        path = tree / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if relative.startswith("bin/"):
            path.chmod(0o755)
    # Fixed dates keep the commits (and so their ids) the same run after run.
    date = {"GIT_AUTHOR_DATE": f"2025-01-01T00:00:{index:02d}Z"}
    date["GIT_COMMITTER_DATE"] = date["GIT_AUTHOR_DATE"]
    _git(tree, "add", "--all")
    _git(tree, "commit", "--quiet", "-m", f"Bump version to {tag}", env=date)
    _git(tree, "tag", "-a", tag, "-m", f"Mastodon {tag}", env=date)


def build_mastodon_repo(path: Path, tags: Sequence[str] = DEFAULT_TAGS) -> MastodonRepo:
    """Create the bare repository at ``path`` (replacing what is there)."""
    if path.exists():
        shutil.rmtree(path)
    with tempfile.TemporaryDirectory() as work:
        tree = Path(work)
        _git(tree, "init", "--quiet", "--initial-branch=main")
        for index, tag in enumerate(tags):
            _commit_release(tree, tag, index)
        _git(tree.parent, "clone", "--quiet", "--bare", str(tree), str(path))
    return MastodonRepo(path.resolve(), list(tags))
