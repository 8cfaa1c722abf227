from __future__ import annotations

from controlplane.ids import uuid7


def test_uuid7_is_version_7_and_sorts_in_creation_order() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert all(i.version == 7 and i.variant == "specified in RFC 4122" for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
