"""Training: tokenization, batching (padding or packing), checkpoints, and the recipe that ties them to the mixer."""
