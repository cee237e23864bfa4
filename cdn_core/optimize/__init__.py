"""Content optimisation: negotiated ``br``/``gzip`` variants and image transforms.

The node calls a :class:`~cdn_core.optimize.transform.Transformer`; the rest is the
library it is built from: :mod:`.negotiate` (Accept-Encoding and Accept), :mod:`.compress`
(which responses, encoders, variant headers), :mod:`.etag` (variant entity-tags),
:mod:`.images` (Pillow transforms and signed resize URLs), :mod:`.pool` (bounded
single-flight worker pool), :mod:`.settings` and :mod:`.metrics`.

Import from the submodules (``cdn_core.optimize.transform`` ...): this package
module imports nothing, so that node configuration can use :mod:`.settings` without
pulling in the node runtime.
"""
