"""Mastodon servers ordered by organisations, and their lifecycle."""
