"""A mid tier with an on-disk tier survives a restart (issue 5): entries still fresh are
served without an origin fetch; a corrupt file is dropped, never served."""

from __future__ import annotations

from nodeharness import Route

CC600 = {"Cache-Control": "max-age=600", "ETag": '"d1"'}


async def test_fresh_entries_survive_a_restart_and_corrupt_files_are_dropped(
    origin, make_node, http, tmp_path
):
    origin.routes["/keep"] = Route(headers=CC600, body=b"K" * 5000)
    origin.routes["/torn"] = Route(headers=CC600, body=b"T" * 5000)
    disk = tmp_path / "mid1"
    settings = {"disk_path": str(disk), "disk_fsync": False}
    mid = await make_node([origin.url], tier="mid", name="mid1", cache=settings)
    for path in ("/keep", "/torn"):
        assert (await http(mid, path))[0] == 200
    await mid.stop()  # flushes queued disk writes

    files = sorted(p for p in disk.rglob("*") if p.is_file())
    assert files, "nothing was written to the disk tier"
    # Tear one entry: keep its head, cut its body (a crash in the middle of a write).
    torn = next(p for p in files if b"T" * 100 in p.read_bytes())
    data = torn.read_bytes()
    torn.write_bytes(data[: len(data) // 2])

    again = await make_node([origin.url], tier="mid", name="mid1", cache=settings)
    s, h, b = await http(again, "/keep")
    assert s == 200 and b == b"K" * 5000 and "hit" in h["Cache-Status"]
    assert origin.hits["/keep"] == 1  # served from disk after the restart
    s, h, b = await http(again, "/torn")
    assert s == 200 and b == b"T" * 5000  # refetched, the torn copy never served
    assert origin.hits["/torn"] == 2
