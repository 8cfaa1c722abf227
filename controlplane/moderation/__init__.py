"""Moderation staffing: staff moderation teams, their assignment to servers
with the moderation add-on, and the moderator access that follows on each
server (accounts with the Moderator role and admin API tokens)."""
