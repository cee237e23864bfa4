"""Several base URLs of one service (control-plane replicas), and which one to try first.

Nodes, the DNS router and ``cdnctl`` take ``URL1,URL2,...`` wherever they take the
control plane's URL (``--control-plane``, ``control.url``, ``$CDN_API``). Every call goes
first to the replica that answered last; when it cannot be reached, times out or answers
a 5xx, the caller tries the next one in the list, then the rest in turn, and sticks with
the first that answers. Every replica serves the whole API from the shared database, so
any of them will do. No I/O here: callers report outcomes.
"""

from __future__ import annotations

from collections.abc import Sequence


def split_urls(value: str) -> list[str]:
    """``"http://a:9000, http://b:9000/"`` as ``["http://a:9000", "http://b:9000"]``.

    Raises:
        ValueError: the list is empty or an entry is not an http(s) URL (naming it).
    """
    urls = [u.strip().rstrip("/") for u in value.split(",") if u.strip()]
    if not urls:
        raise ValueError("no URL given")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"control plane URL {url!r} must start with http:// or https://")
    return urls


def should_fail_over(status: int) -> bool:
    """True for answers that say "try another replica" (502, 503, 504), not "you are
    wrong" (4xx) or "it failed" (500: the same request would fail everywhere)."""
    return status in (502, 503, 504)


class Endpoints:
    """The URLs of one service, ``urls`` in the operator's order (at least one)."""

    def __init__(self, urls: Sequence[str]) -> None:
        if not urls:
            raise ValueError("no URL given")
        self.urls = list(urls)
        self._current = 0

    @property
    def current(self) -> str:
        """The URL that answered last (the first one before any answer)."""
        return self.urls[self._current]

    def order(self) -> list[str]:
        """Every URL, the current one first and then the rest in list order, wrapping."""
        n = len(self.urls)
        return [self.urls[(self._current + i) % n] for i in range(n)]

    def answered(self, url: str) -> None:
        """``url`` answered: try it first from now on."""
        self._current = self.urls.index(url)
