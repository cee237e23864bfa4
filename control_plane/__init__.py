"""The control plane: REST API for purge, push, node registry and failover, and ``cdnctl``."""
