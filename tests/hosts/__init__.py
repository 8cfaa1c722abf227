"""Test hosts for Herd's Ansible playbooks: sshd in namespaces, Mastodon stand-in."""
