from .fixtures import fleet, mastodon_repo, start_fleet

__all__ = ["fleet", "mastodon_repo", "start_fleet"]
