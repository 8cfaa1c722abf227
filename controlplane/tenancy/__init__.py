"""Users, organisations, memberships and invitations."""
