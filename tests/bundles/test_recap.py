"""Reading ansible-playbook's PLAY RECAP."""

from __future__ import annotations

import pytest

from controlplane.bundles.recap import parse_recap, status_of
from controlplane.problems import InvalidInput

OUTPUT = """
PLAY [Upgrade a Mastodon server] ***********************************************

TASK [mastodon : Check the inputs] *********************************************
ok: [a.example-herd.social]
fatal: [b.example-herd.social]: UNREACHABLE! => {"changed": false}

PLAY RECAP *********************************************************************
\x1b[0;33ma.example-herd.social\x1b[0m      : \x1b[0;32mok=41  \x1b[0m \
\x1b[0;33mchanged=7   \x1b[0m unreachable=0    failed=0    skipped=12   rescued=0    ignored=1
b.example-herd.social      : ok=0    changed=0    unreachable=1    failed=0    skipped=0    \
rescued=0    ignored=0

"""


def test_each_hosts_counts_are_read() -> None:
    hosts = parse_recap(OUTPUT)
    assert hosts == [
        {
            "host": "a.example-herd.social",
            "ok": 41,
            "changed": 7,
            "unreachable": 0,
            "failed": 0,
            "skipped": 12,
            "rescued": 0,
            "ignored": 1,
        },
        {
            "host": "b.example-herd.social",
            "ok": 0,
            "changed": 0,
            "unreachable": 1,
            "failed": 0,
            "skipped": 0,
            "rescued": 0,
            "ignored": 0,
        },
    ]
    assert status_of(hosts) == "failed"
    assert status_of(hosts[:1]) == "succeeded"


def test_a_log_without_a_recap_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no PLAY RECAP"):
        parse_recap("PLAY [x] ***\nTASK [y] ***\n")
    with pytest.raises(InvalidInput, match="lists no host"):
        parse_recap("PLAY RECAP ****\n\n")
