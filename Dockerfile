# One image for every service of the stack (docker-compose.yml picks the service with
# `command: python -m <service> ...`).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
# Before the install: cdn_core/shipped links to them (package data of the wheel).
COPY configs configs
COPY examples examples
COPY cdn_core cdn_core
COPY edge edge
COPY mid_tier mid_tier
COPY origin origin
COPY router router
COPY control_plane control_plane
RUN pip install --no-cache-dir -c constraints.txt .
