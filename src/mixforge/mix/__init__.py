"""Data mixing: blend the user's domain data with general "replay" data, exactly, per optimizer step.

    config.py    DataMixingConfig: the percents users write (seed `nova_*_percent` keys accepted), schedules
    catalog.py   the general-data categories and their sources (embedded package data, hub datasets, user's own)
    weights.py   pure arithmetic: percents -> per-source shares -> exact integer counts per step
    sampler.py   MixSampler: the deterministic, resumable, sharded sequence of (source, record index)
    manifest.py  the mixture manifest written with a run and checked on resume
    trace.py     which records optimizer step K used (a pure function of manifest and seed)

Nothing here imports torch; the trainer consumes `MixSampler` (see sampler.py's docstring).
"""
