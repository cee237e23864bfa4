"""The caching-proxy runtime shared by edges and mid tiers."""
