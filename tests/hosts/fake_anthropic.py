"""A loopback stand-in for the Anthropic Messages API, enough for Claude Code's `-p` mode.

`POST /v1/messages` with a request whose tools include the one to call, and whose last
user message holds no `tool_result`, answers (as SSE when `stream` is set) with one
`tool_use` block; any other request answers a short text with `end_turn`. Every request
body is kept in `requests`, so a test reads the `tool_result` the model was given.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeAnthropic:
    def __init__(self, tool: str, tool_input: dict[str, Any]) -> None:
        self.tool = tool
        self.tool_input = tool_input
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
        """Every `tool_result` block the model was sent."""
        found = []
        for body in self.requests:
            for message in body.get("messages", []):
                content = message.get("content")
                if message.get("role") == "user" and isinstance(content, list):
                    found.extend(b for b in content if b.get("type") == "tool_result")
        return found

    def _answer(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        names = {t.get("name") for t in body.get("tools", []) if isinstance(t, dict)}
        messages = body.get("messages", [])
        last = messages[-1].get("content") if messages else None
        answered = isinstance(last, list) and any(
            isinstance(b, dict) and b.get("type") == "tool_result" for b in last
        )
        if self.tool in names and not answered:
            block = {"type": "tool_use", "id": "toolu_e2e_01", "name": self.tool, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(self.tool_input)}
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
