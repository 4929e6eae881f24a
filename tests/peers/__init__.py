"""Real protocol peers on 127.0.0.1 that tests and benchmarks talk to instead of the real world."""

import pytest

# Test modules import the peers before pytest loads them as plugins (for their fixtures).
pytest.register_assert_rewrite("tests.peers.vellum")
