"""The `.env.production` variables that point Mastodon at its grant.

Read against Mastodon's config/initializers/paperclip.rb, which explains
two surprises:

- S3_OVERRIDE_PATH_STYLE=true turns path-style addressing *off*: with
  S3_ENDPOINT set, Mastodon forces path style unless it is "true".
- S3_ALIAS_HOST is tested for presence, not emptiness: an empty value makes
  every media URL hostless. It is left out when there is no alias host, and
  templates must not write it empty.

S3_PROTOCOL and S3_HOSTNAME only build the URLs visitors load media from;
Mastodon's own calls go to S3_ENDPOINT.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from controlplane.storage.service import StorageGrant


def mastodon_env(grant: StorageGrant, secret_access_key: str | None = None) -> dict[str, str]:
    """The S3 variables for `grant`. `secret_access_key` is the stored secret
    when the grant came back without one (the key already existed)."""
    secret = secret_access_key or grant.secret_access_key
    if not secret:
        raise ValueError(f"the secret of access key {grant.access_key_id} is needed")
    endpoint = urlsplit(grant.endpoint)
    env = {
        "S3_ENABLED": "true",
        "S3_BUCKET": grant.bucket,
        "S3_REGION": grant.region,
        "S3_ENDPOINT": grant.endpoint,
        # Media on an alias host (a CDN) is loaded by browsers on an HTTPS
        # page; the endpoint's own scheme applies only when they load it
        # from the endpoint.
        "S3_PROTOCOL": "https" if grant.alias_host else endpoint.scheme,
        "S3_HOSTNAME": endpoint.netloc,
        "S3_OVERRIDE_PATH_STYLE": "false" if grant.path_style else "true",
        "S3_PERMISSION": grant.permission,
        "AWS_ACCESS_KEY_ID": grant.access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
    }
    if grant.alias_host:
        env["S3_ALIAS_HOST"] = grant.alias_host
    return env
