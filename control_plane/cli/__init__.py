"""``cdnctl``, the operator CLI: :mod:`control_plane.cli.main` builds the parser from one
module per command group; :mod:`control_plane.cli.common` holds what they share (the REST
API client, the API key, one-line errors, tables) and is public.

``up``, ``chaos`` and ``top`` are registered by the modules that implement them
(:mod:`control_plane.launcher`, :mod:`control_plane.chaos`, :mod:`control_plane.top`).
"""
