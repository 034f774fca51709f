"""One file per schema revision, oldest first (docs/migrations.md)."""
