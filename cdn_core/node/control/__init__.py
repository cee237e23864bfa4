"""The link to the control plane: heartbeats (registration, rate-limit policies, failover
state, signing keys), purge catch-up by sequence number, and the admin routes the control
plane calls (``POST /purge``, ``POST /prewarm``).

May import: :mod:`cdn_core.node.settings`, :mod:`cdn_core.node.exchange`,
:mod:`cdn_core.node.policy` (the rate-limit policy model), :mod:`cdn_core.store`.
Never :mod:`cdn_core.node.app`: the node is reached through the small interface the
routes declare.
"""
