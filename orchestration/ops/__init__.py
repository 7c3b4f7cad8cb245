"""ops stage (see docs/design.md)."""
