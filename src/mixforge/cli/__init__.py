"""The `mixforge` command: a thin typed shell over the SDK, one module per command group."""
