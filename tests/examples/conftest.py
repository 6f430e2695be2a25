"""The examples' tests share the plugins' headless Chromium fixture.

Re-exported rather than moved: the fixture, and why it fails rather than
skips without a browser, stay in one place (tests/plugins/conftest.py).
"""

from __future__ import annotations

from tests.plugins.conftest import browser

__all__ = ["browser"]
