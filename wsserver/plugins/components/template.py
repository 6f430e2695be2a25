"""The HTML document a page is served in: ``templates/page.html``.

The template is a ``string.Template`` (``${name}`` placeholders), read once
from the package.  What is substituted is either text, always escaped, or
``Markup``: HTML the caller vouches for, inserted as it is.  The two are
separate parameters of ``render_page_html``, so that nothing becomes markup
by accident.
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from string import Template
from typing import NewType

__all__ = ["PAGE_FIELDS", "Markup", "page_template", "render_page_html"]

#: HTML that is inserted into the page as it is: built by the server
#: (``render_html``, ``script_tag``) or given by the application's author.
Markup = NewType("Markup", str)

#: The placeholders of ``templates/page.html``.
PAGE_FIELDS = frozenset({"lang", "title", "head", "page_id", "body", "scripts"})


@cache
def page_template() -> Template:
    """The packaged ``templates/page.html``, read once."""
    source = resources.files(__package__).joinpath("templates", "page.html")
    return Template(source.read_text(encoding="utf-8"))


def render_page_html(
    *, lang: str, title: str, page_id: str, head: Markup, body: Markup, scripts: Markup
) -> str:
    """A page's whole HTML document.

    Args:
        lang: the ``<html lang>``: text, escaped.
        title: the ``<title>``: text, escaped.
        page_id: the page's id, in ``data-cv-page`` (empty: a page served
            without scripts): text, escaped.
        head: extra ``<head>`` HTML, as it is (the application's own).
        body: the root component's HTML (``render_html``), as it is.
        scripts: the ``<script>`` elements, as they are.
    """
    # Attribute values (in double quotes) escape quotes too; text needs
    # only "&", "<" and ">".
    return page_template().substitute(
        lang=html.escape(lang, quote=True),
        title=html.escape(title, quote=False),
        page_id=html.escape(page_id, quote=True),
        head=head,
        body=body,
        scripts=scripts,
    )
