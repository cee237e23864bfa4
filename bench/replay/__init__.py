"""Trace replay through whole CDNs (issue 23): python -m bench.replay."""
