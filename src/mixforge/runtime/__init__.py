"""Runtimes: where a training run executes. Each one builds a launch of the same entry point
(`python -m mixforge.train.entry RUN_CONFIG.json`) on an existing engine and returns a watchable job."""
