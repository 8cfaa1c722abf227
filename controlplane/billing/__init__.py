"""Plans and, later, Stripe billing."""
