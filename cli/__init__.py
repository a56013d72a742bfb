"""The `ner` command line: the one place that knows about the API and the worker together."""
