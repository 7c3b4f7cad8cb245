"""simulate stage (see docs/design.md)."""
