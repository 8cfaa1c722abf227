"""API tokens: bearer secrets for automation, stored only as digests."""
