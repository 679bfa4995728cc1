"""Talking to the StructOCR API: the HTTP client, the strict model of its answer, the typed
errors and exit codes, the deadline, key hygiene and the clock. Imports nothing else of
the package."""
