"""The steps of each pipeline. Every step finds what exists before it
creates anything, so running it twice changes nothing the second time."""
