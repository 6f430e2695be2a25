"""``components.js``: the packaged script, and the tag that loads it.

It is served like the runtime (``runtime.assets``): under the assets'
prefix, at a path naming its version, immutable, compressed, with
Subresource Integrity.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from ..runtime.assets import DEFAULT_PREFIX, RuntimeAsset, asset_script_tag

__all__ = ["components_asset", "components_script_tag"]


@cache
def components_asset() -> RuntimeAsset:
    """The packaged ``static/components.js``, read (and compressed) once."""
    body = resources.files(__package__).joinpath("static", "components.js").read_bytes()
    return RuntimeAsset.from_bytes(body, name="components")


def components_script_tag(
    *, prefix: str = DEFAULT_PREFIX, reload_delay: float = 1.5, integrity: bool = True
) -> str:
    """The ``<script>`` element loading ``components.js`` (after the runtime's).

    Args:
        prefix: the prefix the assets are served under.
        reload_delay: seconds between the "page expired" message and the
            reload.
        integrity: add the Subresource Integrity attribute.
    """
    return asset_script_tag(
        components_asset(),
        prefix=prefix,
        integrity=integrity,
        extra_attributes={"data-reload-ms": str(max(0, round(reload_delay * 1000)))},
    )
