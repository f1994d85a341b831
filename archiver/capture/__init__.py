"""Capture: seeds cut into batches by host, run in threads, worker processes or on Dask, committed whole."""
