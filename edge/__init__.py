"""The edge node: a thin policy layer over :mod:`cdn_core.node` (tier ``edge``)."""
