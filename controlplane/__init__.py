"""Herd's control plane: the API, the domain model and the `herd` command."""
