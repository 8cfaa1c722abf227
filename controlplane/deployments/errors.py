from __future__ import annotations

from controlplane.problems import Conflict


class NotPlaced(Conflict):
    """The server has no place on a host yet (or no longer), so there is
    nothing to render for it or to compare on a host."""

    kind, title = "server-not-placed", "Server not placed on a host"
