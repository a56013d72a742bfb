"""Celery worker: the app, thin task functions over the NER core, and the entry point."""
