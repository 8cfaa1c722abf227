"""Signed playbook bundles for organisations on a support contract: Herd's
playbooks, roles and templates with an inventory and variables rendered for
the organisation's own servers, a manifest of SHA-256 checksums and a
detached Ed25519 signature over it; and the run reports in-house teams send
back. docs: README.md, "Support contracts: playbook bundles"."""
