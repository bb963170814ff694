"""The web chat's HTTP transport through the real stack: the same frames as the websocket, posted and
long-polled, for pages whose Content-Security-Policy allows no websocket."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import RunningStack

pytestmark = pytest.mark.stack


def post(stack: RunningStack, path: str, body: object, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{stack.base_url}/channels/webchat/http/{path}", json=body, timeout=60, **kwargs)


def poll_until(
    stack: RunningStack, session: str, after: str | None, want: str, timeout: float = 90
) -> list[dict[str, Any]]:
    """Poll until a frame of role `want` arrives; every frame seen, in order."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        params = {"session": session, "wait": "10", **({"after": after} if after else {})}
        resp = httpx.get(f"{stack.base_url}/channels/webchat/http/poll", params=params, timeout=30)
        assert resp.status_code == 200, resp.text
        assert resp.headers["access-control-allow-origin"] == "*"
        for frame in resp.json()["frames"]:
            seen.append(frame)
            if frame.get("seq"):
                after = frame["seq"]
            if frame.get("role") == want:
                return seen
    pytest.fail(f"no {want} frame in {timeout} s: {seen}")


def test_hello_send_and_poll_answer_an_order_question(stack: RunningStack) -> None:
    resp = post(stack, "hello", {"session": None, "locale": "zh-CN", "last_seq": None, "identity": None})
    assert resp.status_code == 200 and resp.headers["access-control-allow-origin"] == "*"
    [welcome] = resp.json()["frames"]
    assert welcome["type"] == "welcome" and welcome["history"] == []
    session = welcome["session"]
    cid = uuid.uuid4().hex
    sent = post(
        stack,
        "frames",
        {"session": session, "frames": [{"type": "message", "text": "DD202405001 到哪了", "client_id": cid}]},
    )
    assert sent.status_code == 200 and sent.json()["frames"] == []
    frames = poll_until(stack, session, None, "bot")
    echo = [f for f in frames if f.get("role") == "customer"]
    assert [f["client_id"] for f in echo] == [cid]
    bot = [f for f in frames if f.get("role") == "bot"]
    assert "DD202405001" in bot[-1]["text"]
    # The same message posted again (a retry after a lost response) is not answered twice.
    post(
        stack,
        "frames",
        {"session": session, "frames": [{"type": "message", "text": "DD202405001 到哪了", "client_id": cid}]},
    )
    time.sleep(2)
    again = httpx.get(
        f"{stack.base_url}/channels/webchat/http/poll",
        params={"session": session, "after": bot[-1]["seq"], "wait": "0"},
        timeout=30,
    ).json()["frames"]
    assert [f for f in again if f.get("type") == "message"] == []
    # A seq out of Redis's range is refused, not a 500 (a poll) or ignored (a hello replays everything).
    for odd in ("99999999999999999999-0", "18446744073709551615-18446744073709551615"):
        refused = httpx.get(
            f"{stack.base_url}/channels/webchat/http/poll",
            params={"session": session, "after": odd, "wait": "0"},
            timeout=30,
        )
        assert refused.status_code == 422, refused.text
        hello = post(stack, "hello", {"session": session, "locale": "zh-CN", "last_seq": odd})
        assert hello.status_code == 200, hello.text
    # A reload: hello with the session gives the same conversation and its history.
    resp = post(stack, "hello", {"session": session, "locale": "zh-CN", "last_seq": None})
    [again_welcome] = resp.json()["frames"]
    assert again_welcome["conversation_id"] == welcome["conversation_id"]
    assert [m["role"] for m in again_welcome["history"]][:2] == ["customer", "bot"]


def test_pings_and_bad_frames_answer_in_frames(stack: RunningStack) -> None:
    [welcome] = post(stack, "hello", {}).json()["frames"]
    frames = post(
        stack, "frames", {"session": welcome["session"], "frames": [{"type": "ping"}, {"type": "nope"}, 5]}
    ).json()["frames"]
    assert [f["type"] for f in frames] == ["pong", "error", "error"]
    assert [f.get("code") for f in frames[1:]] == ["unknown_type", "bad_json"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("frames", {"session": "forged", "frames": []}, 401),
        ("frames", {"frames": []}, 422),
        ("frames", {"session": "x", "frames": [{}] * 21}, 422),
        ("hello", {"session": 5}, 422),
    ],
)
def test_bad_requests_are_refused_with_4xx(stack: RunningStack, path: str, body: object, status: int) -> None:
    resp = post(stack, path, body)
    assert resp.status_code == status, resp.text
    assert resp.headers["access-control-allow-origin"] == "*"


def test_oversized_and_non_json_bodies_and_preflight(stack: RunningStack) -> None:
    url = f"{stack.base_url}/channels/webchat/http/hello"
    assert httpx.post(url, content=b"{" + b" " * 70_000 + b"}", timeout=30).status_code == 413
    assert httpx.post(url, content=b"not json", headers={"Content-Type": "text/plain"}, timeout=30).status_code == 422
    # text/plain JSON is what the widget sends (no preflight needed).
    ok = httpx.post(url, content=b'{"locale": "en"}', headers={"Content-Type": "text/plain"}, timeout=30)
    assert ok.status_code == 200 and ok.json()["frames"][0]["type"] == "welcome"
    pre = httpx.options(url, headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == "*"
    poll = httpx.get(
        f"{stack.base_url}/channels/webchat/http/poll", params={"session": "x", "after": "bad"}, timeout=30
    )
    assert poll.status_code == 422
