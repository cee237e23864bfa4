"""HTTP routes of the control plane API, one concern per module; each has ``add_routes``."""
