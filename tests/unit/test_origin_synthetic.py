"""Synthetic objects for trace replay (origin/synthetic.py): parsing, validators, bytes."""

from __future__ import annotations

from origin import synthetic


def test_parse_takes_id_and_size_and_refuses_the_rest() -> None:
    assert synthetic.parse("/obj/42/1000", "/obj/", 10**6) == ("42", 1000)
    assert synthetic.parse("/obj/a.b-c_d/0", "/obj/", 10) == ("a.b-c_d", 0)
    for bad in ("/obj/42", "/obj/42/", "/obj//5", "/obj/42/-1", "/obj/42/1e3",
                "/obj/4 2/5", "/other/42/5", "/obj/42/5/x", "/obj/42/11"):
        assert synthetic.parse(bad, "/obj/", 10) is None, bad


def test_bytes_depend_on_the_id_only_and_slices_agree() -> None:
    size = 200_000  # three periods and a bit
    whole = b"".join(synthetic.slices("7", 0, size, 65_536))
    assert len(whole) == size
    assert whole == b"".join(synthetic.slices("7", 0, size, 1000))  # chunking changes nothing
    assert b"".join(synthetic.slices("7", 70_000, 500, 64)) == whole[70_000:70_500]
    assert b"".join(synthetic.slices("7", 0, 1 << 20, 1 << 20))[:size] == whole  # big chunks
    assert whole[:64] != b"".join(synthetic.slices("8", 0, 64, 64))
    assert synthetic.etag("7", size) == synthetic.etag("7", size) != synthetic.etag("7", 1)
    assert synthetic.etag("7", size).startswith('"') and "W/" not in synthetic.etag("7", 1)


def test_the_synthetic_flag_turns_the_section_on_with_its_defaults(tmp_path) -> None:
    from origin.__main__ import build_parser
    from origin.config import load_origin_config

    assert build_parser().parse_args(["--synthetic"]).synthetic
    on = load_origin_config(None, {"root": str(tmp_path), "synthetic": {}})
    assert on.synthetic is not None and on.synthetic.prefix == "/obj/"
    off = load_origin_config(None, {"root": str(tmp_path), "synthetic": None})
    assert off.synthetic is None
    # A nested override whose values are all None still gives nothing.
    assert load_origin_config(None, {"root": str(tmp_path),
                                     "synthetic": {"prefix": None}}).synthetic is None
