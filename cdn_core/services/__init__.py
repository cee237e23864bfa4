"""Many sites on one CDN (issue 20): the service document and its versions, pure and
I/O-free in the style of :mod:`cdn_core.http_cache`, used by nodes, the control plane and
the router alike.

- :mod:`~cdn_core.services.model`: the document (domains, origins, cache rules, cache
  key, request and response rules, error pages, features) and its field checks;
- :mod:`~cdn_core.services.validate`: every error of a document with its field path,
  including checks across rules and across services;
- :mod:`~cdn_core.services.matching`: rule matchers and the host map (exact beats
  wildcard);
- :mod:`~cdn_core.services.keys`: cache keys (the service first, query and secondary
  key rules);
- :mod:`~cdn_core.services.compiled`: one version compiled for the request path, and the
  set of services a node runs;
- :mod:`~cdn_core.services.diff`: what changed between two versions.
"""
