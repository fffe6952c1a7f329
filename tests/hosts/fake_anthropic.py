"""A loopback stand-in for the Anthropic Messages API, enough for Claude Code's `-p` mode.

`POST /v1/messages` with a request whose tools include the one to call answers (as SSE
when `stream` is set) with one `tool_use` block per input of the script, in order: the
first on the first turn, the next once the model has been sent the previous one's
`tool_result`. `before_turn(fake, n)` runs before the n-th tool call is answered (a test plays the
human there). When the script is done, or for any other request, it answers a short text
with `end_turn`. Every request body is kept in `requests`, so a test reads the
`tool_result`s the model was given.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeAnthropic:
    def __init__(
        self, tool: str, *script: dict[str, Any], before_turn: Callable[[int], None] | None = None
    ) -> None:
        self.tool = tool
        self.script = list(script)
        self.before_turn = before_turn
        self.turns = 0
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                fake.requests.append(body)
                if not self.path.startswith("/v1/messages"):
                    self._send(404, b"{}", "application/json")
                    return
                events = fake._answer(body)
                if body.get("stream"):
                    text = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
                    self._send(200, text.encode(), "text/event-stream")
                else:
                    self._send(200, json.dumps(_whole(events)).encode(), "application/json")

            def do_GET(self) -> None:  # noqa: N802
                self._send(404, b"{}", "application/json")

            def _send(self, code: int, data: bytes, kind: str) -> None:
                self.send_response(code)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def tool_results(self) -> list[dict[str, Any]]:
        """Every `tool_result` block the model was sent, once each, in order (each request
        repeats the conversation so far)."""
        found: dict[str, dict[str, Any]] = {}
        for body in self.requests:
            for message in body.get("messages", []):
                content = message.get("content")
                if message.get("role") == "user" and isinstance(content, list):
                    for b in content:
                        if b.get("type") == "tool_result":
                            found.setdefault(str(b.get("tool_use_id")), b)
        return list(found.values())

    def _answer(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        names = {t.get("name") for t in body.get("tools", []) if isinstance(t, dict)}
        messages = body.get("messages", [])
        last = messages[-1].get("content") if messages else None
        answered = isinstance(last, list) and any(
            isinstance(b, dict) and b.get("type") == "tool_result" for b in last
        )
        if self.tool in names and (self.turns == 0 or answered) and self.turns < len(self.script):
            if self.before_turn is not None:
                self.before_turn(self, self.turns)
            tool_input = self.script[self.turns]
            self.turns += 1
            block = {
                "type": "tool_use",
                "id": f"toolu_e2e_{self.turns:02d}",
                "name": self.tool,
                "input": {},
            }
            delta = {"type": "input_json_delta", "partial_json": json.dumps(tool_input)}
            stop = "tool_use"
        else:
            block, delta, stop = (
                {"type": "text", "text": ""},
                {"type": "text_delta", "text": "done"},
                "end_turn",
            )
        usage = {"input_tokens": 10, "output_tokens": 1}
        return [
            {
                "type": "message_start",
                "message": {
                    "id": f"msg_{len(self.requests)}",
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model", "claude-sonnet-4-5"),
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": usage,
                },
            },
            {"type": "content_block_start", "index": 0, "content_block": block},
            {"type": "content_block_delta", "index": 0, "delta": delta},
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
            {"type": "message_stop"},
        ]


def _whole(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The non-streaming form of the same answer."""
    message = dict(events[0]["message"])
    block = dict(events[1]["content_block"])
    delta = events[2]["delta"]
    if block["type"] == "tool_use":
        block["input"] = json.loads(delta["partial_json"])
    else:
        block["text"] = delta["text"]
    message.update(content=[block], stop_reason=events[4]["delta"]["stop_reason"])
    return message
