"""Tests for wsserver.plugins.components.html: the element builder, the
safety checks (tags, attributes, URLs, styles) and server-side rendering."""

from __future__ import annotations

import html.parser
import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsserver.plugins.components.events import EventSpec
from wsserver.plugins.components.html import (
    Element,
    check_attribute_name,
    check_style_name,
    check_tag,
    element,
    h,
    is_safe_url,
    normalize_attribute,
    parse_style,
    render_html,
    safe_url,
)
from wsserver.plugins.components.vdom import TEXT, VNode


def noop() -> None:
    pass


# ---------------------------------------------------------------------------
# The builder
# ---------------------------------------------------------------------------


def test_builder_attributes_children_and_bindings() -> None:
    form = h.form(
        h.label("Title", for_="t"),
        h.input(id="t", name="title", value="x", required=True, disabled=False, maxlength=20),
        ["a ", 1, None, False, True, ("b", h.br())],
        class_=["new", None, "todo"],
        aria_label="new to-do",
        data_role="editor",
        attrs={"accept-charset": "utf-8"},
        style={"margin_top": "1em", "color": None, "--gap": 2},
        key="f",
        on_submit=noop,
    )
    assert form.tag == "form" and form.key == "f"
    assert form.props == {
        "accept-charset": "utf-8",
        "class": "new todo",
        "aria-label": "new to-do",
        "data-role": "editor",
    }
    assert form.style == {"margin-top": "1em", "--gap": "2"}
    assert form.events["submit"].spec == EventSpec(prevent_default=True)
    label, input_, *rest = form.children
    assert label.props == {"for": "t"}
    assert input_.props == {
        "id": "t",
        "name": "title",
        "value": "x",
        "required": True,
        "disabled": False,
        "maxlength": "20",
    }
    # None and booleans are skipped, numbers are text, lists are flattened.
    assert rest[:3] == ["a ", "1", "b"]
    assert isinstance(rest[3], Element) and rest[3].tag == "br"


def test_bind_defaults_and_options() -> None:
    link = h.a("go", href="/x").bind("click", noop)
    assert link.events["click"].spec.prevent_default  # a bound link is a button
    button = h.button("go").bind("click", noop, value="none", stop_propagation=True)
    assert button.events["click"].spec == EventSpec("none", False, True)
    typing = h.input().bind("input", noop, debounce=0.25, value="this.value")
    assert typing.events["input"].spec == EventSpec("value", debounce_ms=250)
    with pytest.raises(ValueError, match="getter"):
        h.input().bind("input", noop, value="alert(1)")
    with pytest.raises(ValueError, match="'on'"):
        h.button().bind("onclick", noop)
    with pytest.raises(TypeError, match="four"):
        h.button().bind("click", lambda a, b: None)


def test_builder_names_and_errors() -> None:
    assert h("my-widget", "x").tag == "my-widget"
    assert element("p", "x").children == ["x"]
    assert h.svg().tag == "svg"
    with pytest.raises(AttributeError, match="unknown tag"):
        _ = h.dvi
    with pytest.raises(ValueError, match="cannot have children"):
        h.input("text")
    with pytest.raises(TypeError, match="on_<event>"):
        h.button(click=noop)
    with pytest.raises(TypeError, match="not a child"):
        h.div(object())
    with pytest.raises(TypeError):
        h.div(title=["a"])
    with pytest.raises(ValueError, match="finite"):
        h.div(title=float("nan"))
    assert "Element p" in repr(h.p(key=1))


@pytest.mark.parametrize(
    "tag", ["script", "style", "base", "meta", "iframe2!", "Script", "animate", "set", "", "a b"]
)
def test_dangerous_or_invalid_tags_are_refused(tag: str) -> None:
    if tag == "iframe2!" or tag == "" or tag == "a b" or tag == "Script":
        with pytest.raises(ValueError, match="invalid tag"):
            check_tag(tag)
    else:
        with pytest.raises(ValueError, match="not allowed"):
            check_tag(tag)
        with pytest.raises(ValueError):
            h(tag)


@pytest.mark.parametrize(
    "name",
    [
        "onclick",
        "ONCLICK",
        "onError",
        "on",
        "srcdoc",
        "style",
        "STYLE",
        "data-k",
        "data-cv-on",
        "xmlns",
        "xmlns:xlink",
        "a b",
        'x"y',
        "",
        "1a",
        "a>b",
    ],
)
def test_forbidden_attribute_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        check_attribute_name(name)
    with pytest.raises(ValueError):
        h.div(attrs={name: "x"})


def test_event_handler_attributes_cannot_be_set_even_as_strings() -> None:
    with pytest.raises(ValueError, match="bind the event"):
        h.img(onerror="alert(1)")
    with pytest.raises(ValueError, match="bind the event"):
        Element("div").set_attribute("onmouseover", "alert(1)")


# ---------------------------------------------------------------------------
# URLs
# ---------------------------------------------------------------------------

UNSAFE_URLS = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "JAVASCRIPT:alert(1)",
    " javascript:alert(1)",
    "\x01\x02javascript:alert(1)",
    "\tjava\tscript:alert(1)",
    "java\nscript:alert(1)",
    "java\rscript:alert(1)",
    "jav\x00ascript:alert(1)",
    "\u200bjavascript:alert(1)",
    "\ufeffjavascript:alert(1)",
    "javascript\t:alert(1)",
    "vbscript:msgbox(1)",
    "data:text/html,<script>alert(1)</script>",
    "DATA:text/html;base64,PHNjcmlwdD4=",
    "livescript:x",
    "jar:file:x",
]
SAFE_URLS = [
    "/x",
    "x?y=javascript:1",
    "#top",
    "https://example.com/",
    "HTTP://example.com/",
    "mailto:a@b.c",
    "tel:+1",
    "//example.com/x",
    "?javascript:",
    "jav&#x61;script:alert(1)",  # no entity decoding: a relative path
    "./javascript:alert(1)",
]


@pytest.mark.parametrize("url", UNSAFE_URLS)
def test_script_urls_are_refused_however_written(url: str) -> None:
    assert safe_url(url) is None
    assert not is_safe_url(url, attribute="src")
    link = h.a("x", href=url)
    assert "href" not in link.props  # left out: the link is inert
    assert "src" not in h.img(src=url).props
    assert "action" not in h.form(action=url).props
    assert "formaction" not in h.button(formaction=url).props


@pytest.mark.parametrize("url", SAFE_URLS)
def test_ordinary_urls_are_kept(url: str) -> None:
    assert safe_url(url) == url
    assert h.a(href=url).props["href"] == url


def test_data_urls_only_for_images() -> None:
    png = "data:image/png;base64,iVBORw0KGgo="
    assert h.img(src=png).props["src"] == png
    assert "href" not in h.a(href=png).props
    assert "src" not in h.img(src="data:image/svg+xml,<svg onload=alert(1)>").props
    assert "srcset" not in h.img(srcset="/a.png 1x, javascript:alert(1) 2x").props
    assert h.img(srcset="/a.png 1x, /b.png 2x").props["srcset"] == "/a.png 1x, /b.png 2x"


def test_refused_urls_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="wsserver.plugins.components"):
        assert normalize_attribute("href", "javascript:x") is None
    assert "unsafe URL" in caplog.text


IGNORED = st.sampled_from(["\t", "\n", "\r", "\x00", "\x01", "\x1f", " ", "\u200b", "\ufeff"])


@given(st.lists(st.tuples(st.booleans(), st.lists(IGNORED, max_size=2)), min_size=11, max_size=11))
def test_no_obfuscation_of_javascript_gets_through(parts: list[tuple[bool, list[str]]]) -> None:
    # Random case, and characters the browser's URL parser ignores (or a
    # filter might stumble on) anywhere: still refused.
    url = "".join(
        "".join(noise) + (ch.upper() if upper else ch)
        for (upper, noise), ch in zip(parts, "javascript:", strict=True)
    )
    assert safe_url(url + "alert(1)") is None


# ---------------------------------------------------------------------------
# Style
# ---------------------------------------------------------------------------


def test_style_parsing_and_checks() -> None:
    assert parse_style("color: red; margin:0;;bad") == {"color": "red", "margin": "0"}
    assert parse_style({"font_size": 12, "--my_var": "1"}) == {"font-size": "12", "--my_var": "1"}
    assert parse_style(None) == {}
    # Values that would add declarations, or run code in old browsers, go.
    assert parse_style({"color": "red; background: url(x)"}) == {}
    assert parse_style({"width": "expression(alert(1))"}) == {}
    assert parse_style({"background": "url(javascript:alert(1))"}) == {}
    assert parse_style({"x": "</style>"}) == {}
    with pytest.raises(ValueError):
        check_style_name("co lor")
    with pytest.raises(ValueError):
        parse_style({"a;b": "1"})
    with pytest.raises(TypeError):
        parse_style({"color": True})


# ---------------------------------------------------------------------------
# Server-side rendering
# ---------------------------------------------------------------------------


class _Parsed(html.parser.HTMLParser):
    """What a browser's parser would see (close enough for these checks)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.starts: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(markup: str) -> _Parsed:
    parser = _Parsed()
    parser.feed(markup)
    parser.close()
    return parser


def test_render_html_marks_keys_and_events() -> None:
    node = VNode(
        "div",
        "r",
        {"id": "a", "hidden": True, "open": False},
        {"color": "red", "margin": "0"},
        {"click": EventSpec()},
        None,
        (VNode(TEXT, "r/#0", text="Hi "), VNode("b", "r/1", text="you")),
    )
    assert render_html(node) == (
        '<div data-k="r" id="a" hidden style="color: red; margin: 0"'
        " data-cv-on='{\"click\":{}}'>"
        'Hi <b data-k="r/1">you</b></div>'
    )
    # What the browser's parser reads back is the JSON the runtime expects.
    (_, attributes), *_ = parse(render_html(node)).starts
    assert json.loads(attributes["data-cv-on"] or "") == {"click": {}}
    tricky = VNode("p", "r", events={"x": EventSpec("data:a_b")})
    (_, attributes), *_ = parse(render_html(tricky)).starts
    assert json.loads(attributes["data-cv-on"] or "") == {"x": {"v": "data:a_b"}}


PAYLOADS = [
    "<script>window.__xss=1</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
    "</textarea><script>alert(1)</script>",
    "&lt;b&gt; & &amp; &#x3C;",
    '" onmouseover="alert(1)',
    "<!-- -->",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_text_and_attributes_are_escaped(payload: str) -> None:
    node = VNode(
        "div",
        "r",
        {"title": payload, "data-x": payload},
        {"font-family": "x"},
        {},
        None,
        (
            VNode(TEXT, "r/#0", text=payload),
            VNode("textarea", "r/1", {"value": payload}),
            VNode("pre", "r/2", text=payload),
            VNode("span", "r/3", text=payload),
        ),
    )
    parsed = parse(render_html(node))
    tags = [tag for tag, _ in parsed.starts]
    assert tags == ["div", "textarea", "pre", "span"]  # no tag from the payload
    attributes = parsed.starts[0][1]
    assert attributes["title"] == payload and attributes["data-x"] == payload
    assert set(attributes) == {"data-k", "title", "data-x", "style"}
    assert "".join(parsed.text) == payload * 4


def test_textarea_value_pre_newlines_and_select_value() -> None:
    assert render_html(VNode("textarea", "r", {"value": "\nx"})) == (
        '<textarea data-k="r">\n\nx</textarea>'
    )
    assert render_html(VNode("pre", "r", text="\nx")) == '<pre data-k="r">\n\nx</pre>'
    select = VNode(
        "select",
        "r",
        {"value": "b", "name": "s"},
        children=(
            VNode("option", "r/0", {"value": "a"}, text="A"),
            VNode("optgroup", "r/1", children=(VNode("option", "r/1/0", text="b"),)),
        ),
    )
    assert render_html(select) == (
        '<select data-k="r" name="s"><option data-k="r/0" value="a">A</option>'
        '<optgroup data-k="r/1"><option data-k="r/1/0" selected>b</option></optgroup></select>'
    )
    assert render_html(VNode("input", "r", {"value": "v"})) == '<input data-k="r" value="v">'


@given(st.text(max_size=40), st.text(max_size=40))
def test_any_text_round_trips_through_the_html_parser(text: str, attribute: str) -> None:
    text = text.replace("\r", "").replace("\x00", "")  # the parser normalises these
    attribute = attribute.replace("\r", "").replace("\x00", "")
    parsed = parse(render_html(VNode("p", "r", {"title": attribute}, text=text or None)))
    assert parsed.starts == [("p", {"data-k": "r", "title": attribute})]
    assert "".join(parsed.text) == text
