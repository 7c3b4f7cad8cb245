"""publish stage (see docs/design.md)."""
