"""The portal's and the console's pages, one module per area."""
