"""A server's backups: those on its host (listed by the `backups` job) and
its final backups in the object store's backups bucket."""
