"""The record of an index: SQLite documents and passages (``store``), their rows in memory (``rows``,
``overlay``), the manifest, and the folder of generations."""
