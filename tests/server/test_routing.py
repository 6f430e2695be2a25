"""Tests for wsserver.server.routing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsserver.server.datastructures import URL
from wsserver.server.requests import Request
from wsserver.server.responses import PlainTextResponse, Response
from wsserver.server.routing import (
    Match,
    MatchKind,
    Mount,
    NoMatchFound,
    Route,
    Router,
    WebSocketRoute,
)
from wsserver.server.static import StaticFiles


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


async def echo_params(request: Request) -> Response:
    return PlainTextResponse(repr(sorted(request.path_params.items())))


class ChatEndpoint:
    """Stands in for whatever WebSocket endpoint type the server accepts."""


def make_router() -> Router:
    router = Router()
    router.add_route("/", ok, name="home")
    router.add_route("/rooms/{room}", echo_params, name="room")
    router.add_route("/items/{id:int}", ok, methods=["GET", "DELETE"], name="item")
    router.add_route("/items/{id:int}", ok, methods=["PUT"], name="item_put")
    router.add_route("/files/{path:path}", ok, name="files")
    router.add_route("/u/{user}/posts/{post:int}/edit", ok, methods=["POST"], name="edit")
    router.add_websocket_route("/ws/{room}", ChatEndpoint, name="chat")
    router.add_websocket_route("/live", ChatEndpoint, name="live")
    router.add_route("/live", ok, methods=["POST"], name="live_post")
    return router


# --- matching --------------------------------------------------------------


def test_found_with_decoded_params() -> None:
    router = make_router()
    m = router.match_http("/rooms/lobby%20one", "GET")
    assert m.kind is MatchKind.FOUND
    assert m.found and not m.not_found and not m.method_not_allowed and not m.websocket_only
    assert isinstance(m.route, Route)
    assert m.route.name == "room"
    assert m.route.endpoint is echo_params
    assert m.path_params == {"room": "lobby one"}
    assert m.error_response() is None


def test_encoded_slash_stays_inside_a_parameter() -> None:
    m = make_router().match_http("/rooms/a%2Fb", "GET")
    assert m.path_params == {"room": "a/b"}
    assert make_router().match_http("/rooms/a/b", "GET").not_found


def test_normalisation_of_unreserved_escapes() -> None:
    router = make_router()
    # %6F is "o": the same path as /rooms/x (RFC 3986 section 6.2.2.2).
    assert router.match_http("/r%6Foms/x", "GET").path_params == {"room": "x"}
    assert router.match_http("/items/%31%32", "GET").path_params == {"id": 12}
    # A reserved character stays encoded and does not match a literal.
    assert router.match_http("/rooms%2Fx", "GET").not_found


def test_int_converter() -> None:
    router = make_router()
    m = router.match_http("/items/0042", "GET")
    assert m.path_params == {"id": 42}
    assert isinstance(m.path_params["id"], int)
    assert router.match_http("/items/999999999999999999", "GET").found
    for bad in ("/items/-1", "/items/1.5", "/items/abc", "/items/", "/items/1" + "0" * 18):
        assert router.match_http(bad, "GET").not_found, bad
    # Far beyond int()'s digit limit: a 404, not a crash.
    assert router.match_http("/items/" + "9" * 10_000, "GET").not_found


def test_path_converter() -> None:
    router = make_router()
    assert router.match_http("/files/a/b%20c/d.txt", "GET").path_params == {"path": "a/b c/d.txt"}
    assert router.match_http("/files/", "GET").path_params == {"path": ""}
    assert router.match_http("/files", "GET").not_found


def test_multiple_params() -> None:
    m = make_router().match_http("/u/al%C3%AFce/posts/7/edit", "POST")
    assert m.path_params == {"user": "alïce", "post": 7}


def test_invalid_utf8_param_matches_nothing() -> None:
    assert make_router().match_http("/rooms/%FF", "GET").not_found


def test_head_is_added_to_get_routes() -> None:
    router = make_router()
    assert router.match_http("/items/1", "HEAD").found
    route = Route("/x", ok, methods=["GET"])
    assert route.methods == ("GET", "HEAD")
    assert Route("/x", ok, methods=["POST", "POST"]).methods == ("POST",)
    with pytest.raises(ValueError):
        Route("/x", ok, methods=[])


def test_method_not_allowed_lists_every_method_of_the_path() -> None:
    m = make_router().match_http("/items/1", "POST")
    assert m.kind is MatchKind.METHOD_NOT_ALLOWED
    assert m.method_not_allowed
    assert m.route is None
    assert m.allowed_methods == ("GET", "DELETE", "HEAD", "PUT")
    r = m.error_response()
    assert r is not None
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, DELETE, HEAD, PUT"


def test_methods_are_case_sensitive() -> None:
    assert make_router().match_http("/", "get").method_not_allowed


def test_second_route_with_same_path_is_found() -> None:
    m = make_router().match_http("/items/5", "PUT")
    assert m.found
    assert isinstance(m.route, Route)
    assert m.route.name == "item_put"


def test_websocket_only_path_is_426_for_plain_http() -> None:
    m = make_router().match_http("/ws/lobby", "GET")
    assert m.kind is MatchKind.WEBSOCKET_ONLY
    assert m.websocket_only
    r = m.error_response()
    assert r is not None
    assert r.status_code == 426
    assert r.headers["upgrade"] == "websocket"


def test_http_route_sharing_a_websocket_path() -> None:
    router = make_router()
    # POST /live has an HTTP route; GET /live only the WebSocket one, but the
    # path has an HTTP route, so the answer is 405 listing POST.
    assert router.match_http("/live", "POST").found
    m = router.match_http("/live", "GET")
    assert m.method_not_allowed
    assert m.allowed_methods == ("POST",)


def test_not_found() -> None:
    m = make_router().match_http("/nowhere", "GET")
    assert m.kind is MatchKind.NOT_FOUND
    assert m.not_found
    assert m.route is None
    assert dict(m.path_params) == {}
    r = m.error_response()
    assert r is not None
    assert r.status_code == 404
    assert make_router().match_http("/rooms/", "GET").not_found
    assert make_router().match_http("/rooms/x/", "GET").not_found  # no slash redirect


def test_match_websocket() -> None:
    router = make_router()
    m = router.match_websocket("/ws/lobby")
    assert m.found
    assert isinstance(m.route, WebSocketRoute)
    assert m.route.endpoint is ChatEndpoint
    assert m.path_params == {"room": "lobby"}
    assert router.match_websocket("/live").found
    # HTTP routes never take an upgrade.
    assert router.match_websocket("/rooms/x").not_found
    assert router.match_websocket("/nowhere").not_found
    assert router.match_websocket("/ws/%FF").not_found


def test_first_match_wins() -> None:
    router = Router()
    first = router.add_route("/a/{x}", ok)
    router.add_route("/a/fixed", echo_params)
    assert router.match_http("/a/fixed", "GET").route is first


# --- mounts ----------------------------------------------------------------


def test_mount(tmp_path: Path) -> None:
    (tmp_path / "a b.css").write_text("x")
    static = StaticFiles(tmp_path)
    router = Router()
    router.add_route("/", ok)
    mount = router.mount("/static/", static, name="static")
    assert isinstance(mount, Mount)
    assert mount.prefix == "/static"
    m = router.match_http("/static/css/a%20b.css", "GET")
    assert m.found
    assert m.route is mount
    assert m.subpath == "css/a b.css"
    assert router.match_http("/static", "POST").subpath == ""  # StaticFiles answers 405
    assert router.match_http("/staticx", "GET").not_found
    assert router.match_http("/static/%FF", "GET").not_found
    assert router.match_websocket("/static/x").not_found
    assert router.url_path_for("static", path="/a b.css") == "/static/a%20b.css"
    found = router.match_http(router.url_path_for("static", path="a b.css"), "GET")
    headers = Request("GET", "/", [("host", "h")]).headers
    assert mount.static.get_response(found.subpath, "GET", headers).body == b"x"


def test_root_mount_catches_everything_after_routes(tmp_path: Path) -> None:
    router = Router()
    router.add_route("/api", ok)
    mount = router.mount("/", StaticFiles(tmp_path), name="root")
    assert router.match_http("/api", "GET").route is not mount
    m = router.match_http("/js/app.js", "GET")
    assert m.route is mount
    assert m.subpath == "js/app.js"
    assert router.url_path_for("root", path="js/app.js") == "/js/app.js"


def test_mount_prefix_rules(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Mount("static", StaticFiles(tmp_path))
    with pytest.raises(ValueError):
        Mount("/s/{x}", StaticFiles(tmp_path))


# --- templates -------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "rooms/{room}",  # no leading slash
        "/{a}{b}",  # two parameters in one segment
        "/{a}-{b}",
        "/{a:path}{b}",
        "/{a:path}/{b:path}",  # two path parameters
        "/{a}/{a}",  # repeated name
        "/{a:float}",  # unknown converter
        "/{1a}",  # invalid name
        "/{a",
        "/a}",
        "/{}",
    ],
)
def test_invalid_templates(template: str) -> None:
    with pytest.raises(ValueError):
        Route(template, ok)
    with pytest.raises(ValueError):
        WebSocketRoute(template, ChatEndpoint)


def test_literal_with_special_characters() -> None:
    router = Router()
    router.add_route("/caf\u00e9 menu/{item}", ok, name="menu")
    path = router.url_path_for("menu", item="tea")
    assert path == "/caf%C3%A9%20menu/tea"
    assert router.match_http(path, "GET").path_params == {"item": "tea"}


def test_no_catastrophic_backtracking() -> None:
    router = Router()
    router.add_route("/x/{p:path}/y/{id:int}/{name}.json", ok)
    router.add_route("/{a}/{b}/{c}/{d}", ok)
    hostile = [
        "/x/" + "/y/1" * 2000 + "/z",
        "/x/" + "a" * 8000 + "/y/1/" + ".json" * 1000 + "/",
        "/" + "a/" * 4000,
        "/" + "/" * 8000,
    ]
    start = time.perf_counter()
    for path in hostile:
        router.match_http(path, "GET")
    assert time.perf_counter() - start < 1.0


# --- url_path_for ----------------------------------------------------------


def test_url_path_for() -> None:
    router = make_router()
    assert router.url_path_for("home") == "/"
    assert router.url_path_for("room", room="a b/c") == "/rooms/a%20b%2Fc"
    assert router.url_path_for("item", id=7) == "/items/7"
    assert router.url_path_for("files", path="a/b c") == "/files/a/b%20c"
    assert router.url_path_for("chat", room="€") == "/ws/%E2%82%AC"
    # Dot segments are encoded so that clients do not collapse them.
    assert router.url_path_for("room", room="..") == "/rooms/%2E%2E"
    assert router.url_path_for("files", path="a/../b") == "/files/a/%2E%2E/b"


def test_url_path_for_errors() -> None:
    router = make_router()
    with pytest.raises(NoMatchFound):
        router.url_path_for("nope")
    with pytest.raises(NoMatchFound):
        router.url_path_for("room")
    with pytest.raises(NoMatchFound):
        router.url_path_for("room", room="a", extra="b")
    with pytest.raises(ValueError):
        router.url_path_for("room", room="")
    with pytest.raises(ValueError):
        router.url_path_for("room", room=5)
    with pytest.raises(ValueError):
        router.url_path_for("room", room="\ud800")
    with pytest.raises(ValueError):
        router.url_path_for("item", id=-1)
    with pytest.raises(ValueError):
        router.url_path_for("item", id=10**18)
    with pytest.raises(ValueError):
        router.url_path_for("item", id=True)
    with pytest.raises(ValueError):
        router.url_path_for("item", id="7")


def test_url_path_for_param_called_name() -> None:
    router = Router()
    router.add_route("/users/{name}", ok, name="user")
    assert router.url_path_for("user", name="bob") == "/users/bob"


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    router = make_router()
    with pytest.raises(ValueError):
        router.add_route("/other", ok, name="room")
    with pytest.raises(ValueError):
        router.add_websocket_route("/other", ChatEndpoint, name="home")
    with pytest.raises(ValueError):
        router.mount("/s", StaticFiles(tmp_path), name="chat")
    with pytest.raises(ValueError):
        Router([Route("/a", ok, name="x"), Route("/b", ok, name="x")])


# --- decorators and construction -------------------------------------------


def test_decorators_register_and_return_the_endpoint() -> None:
    router = Router()

    @router.route("/hello/{who}", methods=["GET"], name="hello")
    async def hello(request: Request) -> Response:
        return PlainTextResponse(f"hello {request.path_params['who']}")

    @router.websocket("/ws", name="ws")
    class Endpoint:
        pass

    assert [type(r) for r in router.routes] == [Route, WebSocketRoute]
    m = router.match_http("/hello/world", "GET")
    assert isinstance(m.route, Route)
    assert m.route.endpoint is hello
    request = Request("GET", "/hello/world", [("host", "h")], path_params=dict(m.path_params))
    response = asyncio.run(m.route.endpoint(request))
    assert response.body == b"hello world"
    ws = router.match_websocket("/ws")
    assert isinstance(ws.route, WebSocketRoute)
    assert ws.route.endpoint is Endpoint


def test_router_from_route_list(tmp_path: Path) -> None:
    static = StaticFiles(tmp_path)
    routes: list[Route | WebSocketRoute | Mount] = [
        Route("/", ok),
        WebSocketRoute("/ws", ChatEndpoint),
        Mount("/s", static),
    ]
    router = Router(routes)
    assert router.routes == tuple(routes)
    assert router.match_http("/", "GET").found
    assert router.match_websocket("/ws").found
    assert router.match_http("/s/x", "GET").route is routes[2]
    assert "Route('/'" in repr(routes[0])


def test_match_is_immutable() -> None:
    m = Match(MatchKind.NOT_FOUND)
    with pytest.raises(AttributeError):
        m.kind = MatchKind.FOUND  # type: ignore[misc]
    with pytest.raises(TypeError):
        m.path_params["x"] = "y"  # type: ignore[index]


# --- round trip ------------------------------------------------------------

segment_text = st.text(min_size=1, max_size=30)
path_text = st.text(max_size=60)
ints = st.integers(min_value=0, max_value=10**18 - 1)


@settings(max_examples=300, deadline=None)
@given(room=segment_text, item=ints, path=path_text, user=segment_text, post=ints)
def test_url_path_for_and_match_round_trip(
    room: str, item: int, path: str, user: str, post: int
) -> None:
    router = make_router()
    cases: list[tuple[str, dict[str, str | int], str]] = [
        ("room", {"room": room}, "GET"),
        ("item", {"id": item}, "DELETE"),
        ("files", {"path": path}, "GET"),
        ("edit", {"user": user, "post": post}, "POST"),
    ]
    for name, params, method in cases:
        raw = router.url_path_for(name, **params)
        # Through URL.from_target too, as the server does it.
        url = URL.from_target(raw, "http", "example.com")
        assert url.raw_path == raw
        m = router.match_http(url.raw_path, method)
        assert m.found, (name, params, raw)
        assert isinstance(m.route, Route)
        assert m.route.name == name
        assert dict(m.path_params) == params
    ws_raw = router.url_path_for("chat", room=room)
    ws = router.match_websocket(ws_raw)
    assert ws.found
    assert dict(ws.path_params) == {"room": room}


@given(raw=st.text(max_size=80), method=st.sampled_from(["GET", "POST", "PATCH"]))
def test_matching_never_raises(raw: str, method: str) -> None:
    router = make_router()
    m = router.match_http(raw, method)
    assert isinstance(m.kind, MatchKind)
    assert isinstance(router.match_websocket(raw).kind, MatchKind)
