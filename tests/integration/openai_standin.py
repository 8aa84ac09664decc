"""A stand-in OpenAI-compatible model server for fault tests: instant, deterministic answers over SSE.

Run as its own process (`python openai_standin.py`); it prints its port. The llm service talks to it through
its real `openai` back end, so the service's queue, fault delay, validation and streaming all run; only the
model is replaced, which keeps the LLM's latency exactly the injected LLM_FAULT_DELAY_MS on a busy machine.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Tool-only calls (the router's form): the tool, or no tool with the intent.
_TOOLS = (("möte", "calendar.create_draft"), ("boka", "calendar.create_draft"), ("timer", "timer.set"),
          ("mejl", "email.create_draft"), ("väder", "weather.lookup"), ("klocka", "time.now"))
ANSWER = "Det vet jag inte säkert, men jag kan försöka ta reda på det."


def reply_for(body: dict[str, Any]) -> str:
    text = str(body["messages"][-1]["content"]).lower()
    if "response_format" not in body:
        return ANSWER
    tool = next((name for word, name in _TOOLS if word in text), None)
    return json.dumps({"tool": tool} if tool else {"tool": "none", "intent": "info.query"})


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/v1/models":
            self.send_error(404)
            return
        payload = json.dumps({"object": "list", "data": [{"id": "standin", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = reply_for(body)
        middle = len(text) // 2
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in (text[:middle], text[middle:]):
            self._event({"model": "standin", "choices": [{"index": 0, "delta": {"content": piece}}]})
        self._event({"model": "standin", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 100, "completion_tokens": 2}})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _event(self, chunk: dict[str, Any]) -> None:
        self.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads replies, not access logs."""


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
