"""The organisation portal and the staff console: server-rendered pages on
the same services (and the same permission checks) as the REST API."""
