"""Plugin command-line options, found through the ``wsserver.options`` entry points."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from wsserver.server.plugin_options import ENTRY_POINT_GROUP, EnvironmentOption, plugin_options

GROUP = "wsserver.test-options"


def _reject_odd(value: str) -> None:
    if len(value) % 2:
        raise ValueError(f"{value!r} has an odd length")


GOOD = EnvironmentOption(
    flag="--demo-colour",
    env_var="WSSERVER_TEST_DEMO_COLOUR",
    help="a colour",
    metavar="NAME",
    check=_reject_odd,
)
NOT_AN_OPTION = "a string"


def install_distribution(root: Path, name: str, entries: dict[str, str]) -> None:
    """A distribution on ``sys.path`` publishing ``entries`` under ``GROUP``."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = [f"[{GROUP}]"] + [f"{key} = {value}" for key, value in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def distributions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_an_option_names_its_flag_variable_and_destination() -> None:
    assert GOOD.dest == "demo_colour"
    with pytest.raises(ValueError, match="starts with '--'"):
        EnvironmentOption(flag="-x", env_var="X", help="")
    with pytest.raises(ValueError, match="names no environment variable"):
        EnvironmentOption(flag="--x", env_var="", help="")


def test_published_options_are_found_sorted_by_flag(distributions: Path) -> None:
    module = __name__
    install_distribution(
        distributions,
        "demo",
        {"second": f"{module}:GOOD", "first": "wsserver.plugins.channels.backends:BACKEND_OPTION"},
    )
    found = plugin_options(GROUP)
    assert [option.flag for option in found] == ["--channels-backend", "--demo-colour"]
    assert found[1] is GOOD


def test_one_flag_published_twice_is_added_once(distributions: Path) -> None:
    install_distribution(distributions, "demo", {"a": f"{__name__}:GOOD"})
    install_distribution(distributions / "again", "demo-copy", {"b": f"{__name__}:GOOD"})
    sys.path.insert(0, str(distributions / "again"))
    try:
        assert plugin_options(GROUP) == [GOOD]
    finally:
        sys.path.remove(str(distributions / "again"))


def test_a_broken_entry_point_is_left_out_with_one_line(
    distributions: Path, caplog: pytest.LogCaptureFixture
) -> None:
    install_distribution(
        distributions,
        "demo",
        {
            "missing": "wsserver_no_such_module:OPTION",
            "wrong": f"{__name__}:NOT_AN_OPTION",
            "good": f"{__name__}:GOOD",
        },
    )
    with caplog.at_level(logging.WARNING, logger="wsserver"):
        assert plugin_options(GROUP) == [GOOD]
    messages = sorted(record.getMessage() for record in caplog.records)
    assert len(messages) == 2
    assert messages[0].startswith(
        "command-line option 'missing' (wsserver_no_such_module:OPTION) cannot be loaded: "
        "ModuleNotFoundError"
    )
    assert messages[1] == (
        f"command-line option 'wrong' ({__name__}:NOT_AN_OPTION) is a str, "
        "not an EnvironmentOption; left out"
    )


def test_the_channels_plugin_publishes_its_backend_option() -> None:
    from wsserver.plugins.channels.backends import BACKEND_OPTION, ENV_VAR

    assert BACKEND_OPTION in plugin_options(ENTRY_POINT_GROUP)
    assert BACKEND_OPTION.env_var == ENV_VAR
