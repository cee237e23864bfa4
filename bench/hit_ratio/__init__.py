"""Hit-ratio benchmark: replay request traces through the store's policies and
libCacheSim's. Run ``python -m bench.hit_ratio --help``; results in RESULTS.md."""
