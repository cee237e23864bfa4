"""Content optimisation: negotiated ``br``/``gzip`` variants and image transforms.

The node calls a :class:`~cdn_core.optimize.transform.Transformer`; the rest is the
library it is built from: :mod:`.negotiate` (Accept-Encoding and Accept), :mod:`.compress`
(which responses, encoders, variant headers), :mod:`.etag` (variant entity-tags),
:mod:`.images` (Pillow transforms and signed resize URLs), :mod:`.pool` (bounded
single-flight worker pool), :mod:`.settings` and :mod:`.metrics`.
"""

from cdn_core.optimize.metrics import OptimizeMetrics
from cdn_core.optimize.pool import EncodePool
from cdn_core.optimize.settings import OptimizeSettings
from cdn_core.optimize.transform import NEEDS_ENCODING, Transformer

__all__ = ["NEEDS_ENCODING", "EncodePool", "OptimizeMetrics", "OptimizeSettings", "Transformer"]
