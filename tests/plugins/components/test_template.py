"""Tests for wsserver.plugins.components.template: the page's HTML document,
its placeholders and its escaping."""

from __future__ import annotations

from wsserver.plugins.components.template import (
    PAGE_FIELDS,
    Markup,
    page_template,
    render_page_html,
)


def page(**values: str) -> str:
    arguments = {
        "lang": "en",
        "title": "T",
        "page_id": "id",
        "head": Markup(""),
        "body": Markup(""),
        "scripts": Markup(""),
    }
    arguments.update(values)
    return render_page_html(**arguments)  # type: ignore[arg-type]


def test_the_template_is_read_once_and_has_the_page_fields() -> None:
    template = page_template()
    assert template is page_template()
    assert template.is_valid()
    assert set(template.get_identifiers()) == PAGE_FIELDS


def test_the_document() -> None:
    html = render_page_html(
        lang="fr",
        title="Titre",
        page_id="abc_-123",
        head=Markup('<link rel="stylesheet" href="/s.css">'),
        body=Markup('<p data-k="r">x</p>'),
        scripts=Markup('<script src="/r.js"></script>'),
    )
    assert html == (
        "<!doctype html>\n"
        '<html lang="fr">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>Titre</title>\n"
        '<link rel="stylesheet" href="/s.css">\n'
        "</head>\n"
        "<body>\n"
        '<div id="cv-root" data-cv-page="abc_-123" data-cv-seq="0"><p data-k="r">x</p></div>\n'
        '<script src="/r.js"></script>\n'
        "</body>\n"
        "</html>\n"
    )


def test_text_values_are_escaped() -> None:
    html = page(lang='en" onload="x', title='</title><script>x("1")</script>', page_id='a"><b')
    assert '<html lang="en&quot; onload=&quot;x">' in html
    assert '<title>&lt;/title&gt;&lt;script&gt;x("1")&lt;/script&gt;</title>' in html
    assert 'data-cv-page="a&quot;&gt;&lt;b"' in html
    assert html.count("<") == page().count("<")  # no element added


def test_markup_is_inserted_as_it_is_and_nothing_is_substituted_twice() -> None:
    html = page(title="${body}", head=Markup("<meta name=x content=${title}>"))
    assert "<title>${body}</title>" in html
    assert "<meta name=x content=${title}>" in html
