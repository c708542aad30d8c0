"""Redis URLs: the ``+cluster`` suffix that redis-py does not know."""

from __future__ import annotations

import pytest

from arbiter.state.redis_url import parse_redis_url


@pytest.mark.parametrize(
    ("url", "plain", "cluster"),
    [
        ("redis://h:6379/0", "redis://h:6379/0", False),
        ("rediss://u:p@h:6380", "rediss://u:p@h:6380", False),
        ("redis+cluster://h:7000", "redis://h:7000", True),
        ("rediss+cluster://u:p@h:7000?x=1", "rediss://u:p@h:7000?x=1", True),
    ],
)
def test_the_cluster_suffix_is_stripped_and_reported(url: str, plain: str, cluster: bool) -> None:
    assert parse_redis_url(url) == (plain, cluster)
