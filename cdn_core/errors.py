"""The project's exception types. Third-party exceptions are translated where we call the
library (``raise ... from exc``), so callers handle only these."""


class CdnError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(CdnError):
    """A configuration file or flag is missing or invalid. The message names the file and
    the field (``configs/edge.yaml: cache.max_bytes: Input should be a valid integer``)."""


class StartupError(CdnError):
    """A service could not start (for example, its port is already in use); the message says
    which address and why."""


class UpstreamError(CdnError):
    """An upstream (mid tier or origin) could not be reached or sent an invalid response."""


class UpstreamTimeout(UpstreamError):
    """An upstream did not answer within the configured timeout (seconds)."""
