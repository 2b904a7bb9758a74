"""The explorer: usage, cost, latency and errors over the shipper's JSONL files, local or in Azure.

It imports only ``shared/`` and never writes the log store. How it reads:

* the file name is the partition key (``shared.naming``): a query lists the store and
  opens only the files of the users, models and days it needs (``partitions``);
* each needed file is scanned once by DuckDB with explicit columns into a slim summary,
  one row per record and no bodies (``scan``), cached as Parquet under
  ``EXPLORER_CACHE_DIR`` keyed by file name and size (``cache``), so a closed day is never
  scanned twice and a growing file is scanned again;
* the summaries of the needed files live in one in-memory DuckDB table (``index``) that
  answers the report, the overview and the request list;
* bodies are read only when a record is opened or the request list searches text
  (``records``, ``search``).

Cost is computed at query time from the price table (``prices``, ``costs``), so a
corrected price re-prices history; ``reconcile`` compares the files with OpenAI's own
usage and costs. Prices, units and reconciliation are described in ``docs/costs.md``.
"""
