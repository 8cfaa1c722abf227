"""Operating Herd itself: health, readiness and metrics."""
