"""threed."""
