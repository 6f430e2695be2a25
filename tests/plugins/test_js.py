"""Tests for wsserver.plugins.js: the old home of the JS execution futures.

The code is tested in tests/plugins/runtime/test_js.py; here, that the old
import path still gives the very same objects.
"""

from __future__ import annotations

import wsserver.plugins.js as old
import wsserver.plugins.runtime.js as new


def test_the_public_names_are_re_exported_unchanged() -> None:
    assert old.__all__ == new.__all__
    for name in new.__all__:
        assert getattr(old, name) is getattr(new, name), name


def test_the_log_lines_keep_their_logger_name() -> None:
    assert new.logger.name == "wsserver.plugins.js"
