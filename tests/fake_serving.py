"""A loopback HTTP server that answers like TF Serving's REST predict (half_plus_two) and like
the gateway's POST /predict, for the smoke, load test and demo tests."""

import json
import re
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREDICT = re.compile(r"^/v1/models/(?P<model>[\w.-]+)(/versions/\d+)?:predict$")


@dataclass
class Behaviour:
    model: str = "half_plus_two"
    unavailable_first: int = 0  # answer 503 to this many requests first (a fresh load balancer)
    wrong: bool = False  # answer y = x + 1 instead of 0.5 x + 2
    seen: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, **request: Any) -> int:
        with self.lock:
            self.seen.append(request)
            return len(self.seen)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as TF Serving does
    server: "FakeServer"

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep test output clean

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        behaviour = self.server.behaviour
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        content_type = self.headers.get("Content-Type", "")
        n = behaviour.record(path=self.path, content_type=content_type, body=body)
        if n <= behaviour.unavailable_first:
            self.reply(503, {"error": "no healthy upstream"})
            return
        match = PREDICT.match(self.path)
        if match:
            self.predict(match["model"], body)
        elif self.path == "/predict" and content_type.startswith("image/") and body:
            self.reply(200, {"predictions": {"shirt": 0.8, "dress": 0.2}, "top": ["shirt"]})
        else:
            self.reply(404, {"error": f"no route for {self.path} ({content_type})"})

    def predict(self, model: str, body: bytes) -> None:
        behaviour = self.server.behaviour
        if model != behaviour.model:
            self.reply(404, {"error": f"Servable not found for request: Latest({model})"})
            return
        try:
            xs = [float(x) for x in json.loads(body)["instances"]]
        except (ValueError, KeyError, TypeError):
            self.reply(400, {"error": "expected {'instances': [numbers]}"})
            return
        ys = [x + 1 if behaviour.wrong else 0.5 * x + 2 for x in xs]
        self.reply(200, {"predictions": ys})


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, behaviour: Behaviour, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.behaviour = behaviour

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def predict_url(self) -> str:
        return f"{self.base_url}/v1/models/{self.behaviour.model}:predict"


@contextmanager
def serving(behaviour: Behaviour | None = None) -> Iterator[FakeServer]:
    server = FakeServer(behaviour or Behaviour())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    # `python -m tests.fake_serving PORT`: stands in for `kubectl port-forward` in smoke tests.
    FakeServer(Behaviour(), port=int(sys.argv[1])).serve_forever(poll_interval=0.05)
