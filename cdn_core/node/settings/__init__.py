"""Settings models of a caching node (pydantic, unknown keys rejected). Pure data: the
lowest layer of :mod:`cdn_core.node`, imported by every other part of it.

May import: :mod:`cdn_core.config`, :mod:`cdn_core.errors`, :mod:`cdn_core.optimize.settings`.
Nothing else of :mod:`cdn_core.node`.
"""
