"""Request traces for the hit-ratio benchmark: seeded Zipf traces and the two CDN traces
in ``shared/data`` (zstd CSV ``time,obj_id,size_bytes``)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATA_DIRS = (Path(__file__).resolve().parents[3] / "shared" / "data", Path("/work/shared/data"))
REAL_TRACES = {
    "socialmedia": "cdn-socialmedia-2m.csv.zst",
    "download": "cdn-download-2m.csv.zst",
}


@dataclass
class Trace:
    name: str
    ids: list[int]
    sizes: list[int]
    times: list[int] = field(default_factory=list)  # seconds (real traces only)

    @property
    def requests(self) -> int:
        return len(self.ids)

    def footprint(self) -> tuple[int, int]:
        """Distinct objects and their total bytes (the "catalogue")."""
        seen = dict(zip(self.ids, self.sizes, strict=True))
        return len(seen), sum(seen.values())

    def write_csv(self, path: Path) -> Path:
        """The trace as libCacheSim's CSV reader wants it (header, numeric ids)."""
        with path.open("w") as f:
            f.write("time,obj_id,size_bytes\n")
            f.writelines(
                f"{t},{i},{s}\n" for t, (i, s) in enumerate(zip(self.ids, self.sizes, strict=True))
            )
        return path


def zipf(alpha: float, objects: int, requests: int, *, seed: int = 42, size: int = 1) -> Trace:
    """``requests`` draws from ``objects`` objects with P(rank r) ~ 1/r^alpha; object ids
    are a random permutation of the ranks; every object is ``size`` bytes."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, objects + 1, dtype=np.float64) ** alpha
    ranks = rng.choice(objects, size=requests, p=weights / weights.sum())
    ids = rng.permutation(objects)[ranks]
    return Trace(f"zipf-{alpha:g}", ids.tolist(), [size] * requests)


def find_real(name: str) -> Path:
    for d in DATA_DIRS:
        path = d / REAL_TRACES[name]
        if path.exists():
            return path
    raise FileNotFoundError(f"{REAL_TRACES[name]} not found in {', '.join(map(str, DATA_DIRS))}")


def load_real(name: str, limit: int | None = None) -> Trace:
    """The first ``limit`` requests (all when None) of a trace in shared/data, with their
    timestamps (whole seconds from the trace's start)."""
    path = find_real(name)
    if shutil.which("zstd") is None:
        raise RuntimeError("the zstd command is needed to read the traces (apt-get install zstd)")
    proc = subprocess.run(["zstd", "-dc", str(path)], check=True, capture_output=True)
    lines = proc.stdout.split(b"\n", (limit + 1) if limit else -1)
    body = lines[1 : (limit + 1) if limit else None]
    ids: list[int] = []
    sizes: list[int] = []
    times: list[int] = []
    for line in body:
        if not line:
            continue
        t, oid, size = line.split(b",", 3)[:3]
        times.append(int(t))
        ids.append(int(oid))
        sizes.append(int(size))
    return Trace(name, ids, sizes, times)
