"""Proactive negotiation of content codings (RFC 9110 12.5.3) and image formats (12.5.1).
Pure: no event loop."""

import pytest

from cdn_core.http_cache.vary import accepted_codings, coding_qvalues
from cdn_core.optimize.negotiate import (
    NOT_ACCEPTABLE,
    choose_coding,
    coding_prefs,
    media_prefs,
    rank_codings,
    rank_image_formats,
)

UNMADE = {"identity": 4000, "br": None, "gzip": None}
MADE = {"identity": 4000, "br": 1200, "gzip": 1500}


def choose(ae, available=UNMADE, **kw):
    return choose_coding(coding_prefs(ae), available, **kw)


# H05: compressed variants go only to clients that accept them
@pytest.mark.parametrize("available", [UNMADE, MADE])
def test_12_5_3_h05_clients(available):
    assert choose("gzip, deflate, br", available) == "br"  # C1
    assert choose("gzip, deflate", available) == "gzip"  # C2: never br
    assert choose(None, available) == "identity"  # C3: no Accept-Encoding, our policy
    assert choose("br;q=0, gzip", available) == "gzip"  # C4: never br


def test_12_5_3_q_zero_excludes_and_identity_is_implicitly_acceptable():
    assert choose("br;q=0") == "identity"
    assert choose("br;q=0.0, gzip;q=0") == "identity"
    assert choose("deflate") == "identity"  # nothing we make: identity, not 406


def test_12_5_3_identity_refused_gives_406_when_nothing_else_is_acceptable():
    assert choose("identity;q=0") is NOT_ACCEPTABLE
    assert choose("identity;q=0, deflate") is NOT_ACCEPTABLE
    assert choose("*;q=0") is NOT_ACCEPTABLE
    assert choose("identity;q=0", {"identity": 10}) is NOT_ACCEPTABLE
    assert choose("identity;q=0, gzip") == "gzip"


def test_12_5_3_star_covers_codings_not_named_including_identity():
    assert choose("*") == "br"
    assert choose("*;q=0, identity") == "identity"
    assert choose("*;q=0, gzip") == "gzip"
    assert choose("br;q=0, *") == "gzip"
    assert choose("*;q=0.5, gzip") == "gzip"  # the named coding has the higher q


def test_12_5_3_q_values_are_preferences():
    assert choose("gzip;q=1, br;q=0.5") == "gzip"
    assert choose("gzip;q=0.5, br;q=0.9") == "br"
    assert choose("identity, gzip;q=0.5") == "identity"


def test_12_5_3_equal_q_smallest_known_body_wins():
    sizes = {"identity": 4000, "br": 1600, "gzip": 1500}
    assert choose("gzip, br", sizes) == "gzip"
    assert choose("gzip, br", {"identity": 4000, "br": 1200, "gzip": None}) == "br"


def test_8_4_1_x_gzip_and_case_insensitive_names():
    assert choose("x-gzip") == "gzip"
    assert choose("GZIP, BR") == "br"
    assert choose(" br ; q=0 , Gzip ; Q=0.8") == "gzip"


def test_12_5_3_empty_value_means_identity_only():
    assert choose("") == "identity"
    assert choose("", {"identity": 5, "br": None}) == "identity"


def test_12_4_2_bad_or_out_of_range_qvalues():
    assert choose("br;q=abc, gzip") == "gzip"
    assert choose("br;q=-1, gzip;q=0.1") == "gzip"
    assert coding_prefs("br;q=7").q("br") == 1.0


def test_12_5_3_one_parser_for_negotiation_and_the_secondary_key():
    assert coding_qvalues("gzip;q=0.5, X-GZIP;q=0.7, identity;q=0, *;q=0.1") == {
        "gzip": 0.7,
        "identity": 0.0,
        "*": 0.1,
    }
    assert accepted_codings("br;q=0, *") == {"gzip", "zstd", "deflate"}


def test_preferring_a_variant_the_client_holds():
    assert choose("gzip, br", MADE, prefer=frozenset({"gzip"})) == "gzip"
    assert choose("gzip, br", MADE, prefer=frozenset({"identity"})) == "identity"
    # ... but never one it does not accept
    assert choose("br, gzip;q=0", MADE, prefer=frozenset({"gzip"})) == "br"


def test_rank_lists_every_acceptable_coding():
    assert rank_codings(coding_prefs("gzip, br"), MADE) == ["br", "gzip", "identity"]
    assert rank_codings(coding_prefs("identity;q=0"), MADE) == []


# Images (Accept, RFC 9110 12.5.1)
CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
SAFARI = "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5"
FIREFOX = "image/avif,image/webp,*/*"
OLD = "image/png,image/*;q=0.8,*/*;q=0.5"
BOTH = ("avif", "webp")


def formats(accept, original="jpeg", candidates=BOTH):
    return rank_image_formats(media_prefs(accept), original, candidates)


def test_12_5_1_browsers_naming_avif_and_webp_get_them():
    assert formats(CHROME) == ["avif", "webp", "jpeg"]
    assert formats(FIREFOX) == ["avif", "webp", "jpeg"]
    # Safari: image/jpeg only through image/*;q=0.8, so the named formats rank first
    assert formats(SAFARI) == ["avif", "webp", "jpeg"]
    assert formats(CHROME, candidates=("webp",)) == ["webp", "jpeg"]


def test_12_5_1_wildcards_are_no_evidence_of_webp_or_avif_support():
    assert formats(OLD) == ["jpeg"]
    assert formats("*/*") == ["jpeg"]
    assert formats("image/*") == ["jpeg"]
    assert formats(None) == ["jpeg"]


def test_12_5_1_q_zero_and_preferences():
    assert formats("image/webp;q=0, image/*") == ["jpeg"]
    assert formats("image/avif;q=0, image/webp, */*") == ["webp", "jpeg"]
    assert formats("image/avif;q=0.5,image/webp;q=0.9,image/*;q=0.4") == ["webp", "avif", "jpeg"]
    # the client prefers the original's type: no conversion
    assert formats("image/jpeg, image/webp;q=0.5") == ["jpeg"]
    assert formats("image/avif;q=0.5, */*") == ["jpeg"]


def test_12_5_1_original_not_acceptable_still_ends_with_it():
    assert formats("image/webp") == ["webp", "jpeg"]
    assert formats("text/html") == ["jpeg"]


def test_12_5_1_most_specific_range_wins():
    p = media_prefs("image/*;q=0.2, image/png;q=0.9, */*;q=0.1")
    assert p.q("image/png") == 0.9
    assert p.q("image/gif") == 0.2
    assert p.q("text/html") == 0.1
    assert p.explicit_q("image/gif") == 0.0
