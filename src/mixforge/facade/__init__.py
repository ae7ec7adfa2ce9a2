"""The seed-shaped SDK: thin wrappers that build a typed config and call the core."""
