"""``cdnctl signing-keys`` and ``cdnctl sign-url`` against a live control plane; a URL
signed by the CLI is accepted by the edge's check (cdn_core.node.policy.signed)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from cliharness import Cdnctl, runner, serve_control_plane

from cdn_core.clock import ManualClock
from cdn_core.node.policy.signed import SignedUrlGate
from cdn_core.node.settings.edge import SignedUrlSettings
from control_plane.testing import ADMIN_KEY


@pytest.fixture
async def cdnctl(
    aiohttp_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Cdnctl:
    monkeypatch.setenv("CDN_API_KEY", ADMIN_KEY)
    return runner(await serve_control_plane(aiohttp_server, tmp_path, 30), capsys)


async def test_add_list_remove_never_print_a_stored_secret(cdnctl: Cdnctl, tmp_path: Path) -> None:
    code, out, _ = await cdnctl("signing-keys", "list")
    assert code == 0 and "no signing keys" in out
    code, out, _ = await cdnctl("signing-keys", "add", "k1")
    made = out.splitlines()[1]
    assert code == 0 and len(made) >= 40 and "not shown again" in out
    secret_file = tmp_path / "k2.secret"
    secret_file.write_text("a-secret-of-twenty-chars\n")
    code, out, _ = await cdnctl("signing-keys", "add", "k2", "--secret-file", str(secret_file))
    assert code == 0 and "a-secret" not in out
    code, out, _ = await cdnctl("signing-keys", "list")
    fp2 = hashlib.sha256(b"a-secret-of-twenty-chars").hexdigest()[:12]
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == ["k1", "k2"]
    assert fp2 in out and made not in out and "a-secret" not in out
    code, out, _ = await cdnctl("signing-keys", "remove", "k1")
    assert code == 0 and "removed" in out
    code, _, err = await cdnctl("signing-keys", "remove", "k1")
    assert code == 1 and "no signing key" in err


async def test_bad_input_is_one_line_error(cdnctl: Cdnctl, tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_text("tiny")
    code, _, err = await cdnctl("signing-keys", "add", "k", "--secret-file", str(short))
    assert code == 1 and "16+ characters" in err
    code, _, err = await cdnctl("signing-keys", "add", "k", "--secret-file", str(tmp_path / "no"))
    assert code == 1 and err.startswith("cdnctl: --secret-file")
    code, _, err = await cdnctl("signing-keys", "add", "bad id!")
    assert code == 1 and "id" in err and "Traceback" not in err


async def test_sign_url_is_accepted_by_the_edge(cdnctl: Cdnctl, tmp_path: Path) -> None:
    secret_file = tmp_path / "k.secret"
    secret_file.write_text("0123456789abcdef0123\n")
    code, out, _ = await cdnctl(
        "sign-url", "/private/a.pdf?v=2", "--kid", "k", "--secret-file", str(secret_file),
        "--ttl", "600",
    )
    assert code == 0
    signed = out.strip()
    expires = float(signed.split("expires=")[1].split("&")[0])
    settings = SignedUrlSettings.model_validate(
        {"path_prefixes": ["/private/"], "keys": [{"id": "k", "secret": "0123456789abcdef0123"}]}
    )
    gate = SignedUrlGate(settings, ManualClock(expires - 600))
    assert gate.check(signed, "127.0.0.1") == (None, "/private/a.pdf?v=2")
    assert gate.check(signed.replace("v=2", "v=3"), "127.0.0.1")[0] is not None
    code, _, err = await cdnctl("sign-url", "private", "--kid", "k", "--secret-file",
                                str(secret_file))
    assert code == 1 and "starting with '/'" in err
