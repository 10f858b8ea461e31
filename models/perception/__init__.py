"""perception."""
