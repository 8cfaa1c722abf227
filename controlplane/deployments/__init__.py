"""What Herd would deploy on a server's host now (the preview), and checking
the host for drift from it."""
