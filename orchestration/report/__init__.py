"""report stage (see docs/design.md)."""
