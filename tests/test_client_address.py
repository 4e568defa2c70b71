"""Which address a heavy job counts against (issue 30: one client opened 70 sessions): a direct
connection's own; over loopback, none (the server's machine) unless reverse proxies are
trusted (``CNN_EXPLORER_PROXIES``), then the address the nearest proxy saw."""
from __future__ import annotations

import pytest

from ui.sessions import address_of, trusted_proxies
from viz_core.runtime.jobs import ClientBusy, JobQueue


@pytest.mark.parametrize("ip, forwarded, proxies, expected", [
    ("198.51.100.4", "203.0.113.9", 1, "198.51.100.4"),  # direct: the header is ignored
    (None, None, 0, None),                                # the server's own machine
    (None, "203.0.113.9", 0, None),                       # no trusted proxy: a claim
    (None, "203.0.113.9", 1, "203.0.113.9"),              # one proxy: what it saw
    # the client wrote "10.9.9.9" itself; the proxy appended the address it saw
    (None, "10.9.9.9, 203.0.113.9", 1, "203.0.113.9"),
    (None, "10.9.9.9, 203.0.113.9, 192.0.2.1", 2, "203.0.113.9"),  # two proxies
    (None, " , ", 1, None),                               # an empty header
])
def test_address_of(ip, forwarded, proxies, expected):
    assert address_of(ip, forwarded, proxies) == expected


def test_the_proxy_count_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("CNN_EXPLORER_PROXIES", "1")
    assert trusted_proxies() == 1
    monkeypatch.setenv("CNN_EXPLORER_PROXIES", "lots")  # invalid: no proxy trusted
    assert trusted_proxies() == 0
    monkeypatch.delenv("CNN_EXPLORER_PROXIES")
    assert trusted_proxies() == 0


def test_sessions_behind_one_proxy_from_one_student_share_the_limit():
    """Three sessions of one student behind the proxy: the third heavy job is refused with a
    message naming the address; another student behind the same proxy is not."""
    import threading

    release = threading.Event()
    queue = JobQueue(workers=1, max_per_client=2)
    try:
        student = address_of(None, "10.0.0.1, 203.0.113.9", 1)
        other = address_of(None, "203.0.113.10", 1)
        for n in range(2):
            queue.submit(("job", n), lambda progress: release.wait(10), owner=f"s{n}",
                         client=student)
        with pytest.raises(ClientBusy, match=r"203\.0\.113\.9.*limit is 2"):
            queue.submit(("job", 2), lambda progress: None, owner="s2", client=student)
        queue.submit(("job", 3), lambda progress: None, owner="s3", client=other)
    finally:
        release.set()
        queue.close()
