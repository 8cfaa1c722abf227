"""Herd's workers: the Celery app and, as they arrive, the pipelines,
reconcilers and the rollout engine that carry out what the control plane
records."""
