#!/usr/bin/env bash
# One command for the benchmarks (installs what is missing first, see bench/setup.sh):
#   bench/run.sh [--quick] [options]   edge vs nginx proxy_cache vs Varnish: hits, misses,
#                                      memory (python -m bench.perf --help)
#   bench/run.sh profile [options]     py-spy profile of the edge's hit path
#   bench/run.sh dns [options]         router vs PowerDNS (python -m bench.dns --help)
#   bench/run.sh h2 [options]          edge vs nginx over HTTP/2 (h2load), edge over HTTP/3
#                                      (python -m bench.perf.h2 --help)
# Everything runs on 127.0.0.1 and is stopped on exit; results go to bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
case "${1:-}" in
  profile) shift; bench/setup.sh --profile; exec "$PY" -m bench.perf.profile "$@" ;;
  dns)     shift; bench/setup.sh; exec "$PY" -m bench.dns "$@" ;;
  h2)      shift; bench/setup.sh; exec "$PY" -m bench.perf.h2 "$@" ;;
  *)       bench/setup.sh; exec "$PY" -m bench.perf "$@" ;;
esac
