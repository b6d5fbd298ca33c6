"""The nameko adapter tests run green-threaded, in their own pytest process."""

from __future__ import annotations

import eventlet
import pytest

if not eventlet.patcher.is_monkey_patched("thread"):
    pytest.exit("tests/nameko need eventlet: run `pytest -p tests.support.green tests/nameko` "
                "(make test does)", returncode=4)
