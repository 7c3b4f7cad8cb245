"""transform stage (see docs/design.md)."""
