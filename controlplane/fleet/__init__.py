"""The hosts that run servers (and later releases and rollouts)."""
