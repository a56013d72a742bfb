"""Celery worker: the app factory with its thin tasks (worker.app) and the entry point
(worker.main). The work itself is the service layer's (shared.services)."""
