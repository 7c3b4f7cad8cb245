"""quality stage (see docs/design.md)."""
