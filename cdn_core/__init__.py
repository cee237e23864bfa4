"""Library shared by every service of the tiered CDN; no service entry points live here."""
