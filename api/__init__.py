"""HTTP service (FastAPI): routes, schemas, dependencies and the in-memory production model."""
