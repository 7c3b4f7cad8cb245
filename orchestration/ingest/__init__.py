"""ingest stage (see docs/design.md)."""
