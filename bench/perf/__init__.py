"""Side-by-side HTTP benchmarks of the edge against nginx ``proxy_cache`` and Varnish.

``bench/run.sh`` (or ``python -m bench.perf``) runs everything; see bench/README.md.
"""
