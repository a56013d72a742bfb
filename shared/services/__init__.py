"""The service layer: datasets, jobs, the model registry, the training run and the bulk run.

It depends on the NER core (`shared.ner`), the database (`shared.db`), the object store
(`shared.storage`) and the queue (`shared.queue`), and knows nothing of HTTP or Celery tasks:
`api/` and `worker/` are thin adapters over these functions. Functions take a `Services`
(resources built once per process) and/or a SQLAlchemy session; inner functions only flush,
the caller owns the transaction. Errors are the domain's (`shared.errors`).
"""
