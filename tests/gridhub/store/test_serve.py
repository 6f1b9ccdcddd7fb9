"""The embedded store is served on loopback only."""

from __future__ import annotations

import pytest

from gridhub.errors import ConfigError
from gridhub.store.serve import loopback_only


@pytest.mark.parametrize("listen", ["127.0.0.1:8123", "localhost:8123", "[::1]:8123"])
def test_loopback_addresses_are_served(listen: str) -> None:
    host, port = loopback_only(listen)
    assert port == 8123
    assert host in ("127.0.0.1", "localhost", "::1")


@pytest.mark.parametrize("listen", ["0.0.0.0:8123", "10.0.0.5:8123", "example.org:8123"])
def test_other_addresses_are_refused_with_the_reason(listen: str) -> None:
    with pytest.raises(ConfigError, match="enforces no roles"):
        loopback_only(listen)
