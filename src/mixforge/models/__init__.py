"""Models: the tiny-model factory (`tiny`) and the registry that resolves and loads any model (`registry`)."""
