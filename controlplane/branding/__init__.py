"""Per-server branding: colours, custom CSS, a logo and a background image,
applied to the server's Mastodon by the `brand` job (playbooks/brand.yml)."""
