"""Stand-in for Mastodon's tools on test hosts (standard library only)."""
