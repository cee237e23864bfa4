"""The router: an authoritative DNS server that answers the service name with the address
of the best healthy, close, not-overloaded edge. ``python -m router --config
configs/router.yaml``."""
