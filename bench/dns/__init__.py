"""Our router (authoritative DNS) against PowerDNS Authoritative; ``bench/run.sh dns``."""
