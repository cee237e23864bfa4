#!/usr/bin/env bash
# Install what the benchmarks need, only when something is missing (idempotent, quiet
# when all is there): nginx, Varnish, wrk, h2load (nghttp2-client), dnsperf, PowerDNS (+ Lua backend) and dig from
# Debian packages; py-spy from PyPI for `bench/run.sh profile`. Needs root for apt-get
# (runs `apt-get update` once, only when a package has to be installed).
#   bench/setup.sh
# Installing nginx/varnish/pdns may try to start their stock services (ports 80, 6081,
# 53) on hosts with an init system; the benchmarks never use those ports or services.
set -euo pipefail
need=()
command -v nginx >/dev/null || need+=(nginx)
command -v varnishd >/dev/null || need+=(varnish)
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v pdns_server >/dev/null || need+=(pdns-server)
[[ -n "$(find /usr/lib -name liblua2backend.so 2>/dev/null | head -1)" ]] || need+=(pdns-backend-lua2)
command -v dig >/dev/null || need+=(bind9-dnsutils)
command -v curl >/dev/null || need+=(curl)
command -v taskset >/dev/null || need+=(util-linux)
if ((${#need[@]})); then
  echo "bench/setup.sh: installing ${need[*]}" >&2
  if [[ $(id -u) != 0 ]]; then echo "bench/setup.sh: need root for apt-get" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
python3 -c 'import yaml, uvloop, httptools' 2>/dev/null || {
  echo "bench/setup.sh: the project is not installed: pip install -e .[test]" >&2; exit 1; }
if [[ "${1:-}" == "--profile" ]] && ! command -v py-spy >/dev/null; then
  echo "bench/setup.sh: installing py-spy" >&2
  python3 -m pip install -q py-spy
fi
