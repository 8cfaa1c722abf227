"""What a server's variables become in a bundle: secrets apart, images in."""

from __future__ import annotations

from pathlib import Path

from controlplane.bundles.contents import carry_images, split_secrets


def test_secrets_are_split_off_with_secret_env_extras() -> None:
    variables = {
        "mastodon_local_domain": "a.example-herd.social",
        "mastodon_db_password": "s3cret-db",
        "mastodon_env_extra": {"SOME_API_TOKEN": "tok-123", "FEATURE": "on"},
    }
    plain, secret = split_secrets(variables)
    assert plain == {"mastodon_local_domain": "a.example-herd.social"}
    assert secret == {
        "mastodon_db_password": "s3cret-db",
        "mastodon_env_extra": {"SOME_API_TOKEN": "tok-123", "FEATURE": "on"},
    }
    harmless = {**variables, "mastodon_env_extra": {"FEATURE": "on"}}
    assert split_secrets(harmless)[0]["mastodon_env_extra"] == {"FEATURE": "on"}


def test_branding_images_travel_in_the_bundle(tmp_path: Path) -> None:
    logo = tmp_path / "ab12.png"
    logo.write_bytes(b"\x89PNG fake")
    variables = {
        "mastodon_branding_image_files": {
            "thumbnail": str(logo),
            "favicon": str(tmp_path / "gone.ico"),
        }
    }
    pointed, files = carry_images("a.example-herd.social", variables)
    assert files == {"branding/a.example-herd.social/thumbnail.png": b"\x89PNG fake"}
    assert pointed["mastodon_branding_image_files"] == {
        "thumbnail": "{{ playbook_dir }}/branding/a.example-herd.social/thumbnail.png",
        "favicon": str(tmp_path / "gone.ico"),
    }
    assert carry_images("x", {"a": 1}) == ({"a": 1}, {})
