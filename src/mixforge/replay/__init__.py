"""Self-generated replay: the base model writes the general data mixed into its own fine-tune.

    generate.py  generate_replay(model, n=, mode=magpie|prompts|free, ...) -> ReplayResult
    filters.py   each generation kept or dropped with one reason (truncated, duplicate, template_marker ...)
    backends.py  batched generation: transformers (CPU/GPU) or vLLM (CUDA), chosen automatically
    cache.py     the cache key (generator fingerprint, mode, prompts, settings, seed) and its folder
"""
