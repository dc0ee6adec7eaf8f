"""A small real OpenAI-compatible HTTP server for gateway tests (run as a process).

    python fake_openai.py --port P [--name A] [--delay S] [--fail-status 500] [--max-model-len N]

Answers `[NAME] echo: <last user message>`; counts words as tokens; rejects prompts that
do not fit --max-model-len with a 400 like vLLM; GET /stats returns the request count.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_handler(args: argparse.Namespace):
    stats = {"chat_requests": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # one write per response: no Nagle / delayed-ACK stalls

        def log_message(self, *a) -> None:  # quiet
            pass

        def _json(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._json(200, {})
            elif self.path == "/stats":
                self._json(200, stats)
            elif self.path == "/v1/models":
                self._json(200, {"data": [{"id": args.served_name}]})
            else:
                self._json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            with lock:
                stats["chat_requests"] += 1
            if self.path != "/v1/chat/completions":
                return self._json(404, {"error": {"message": "not found"}})
            if args.delay:
                time.sleep(args.delay)
            if args.fail_status:
                return self._json(args.fail_status, {"error": {"message": f"{args.name} is broken"}})
            if body.get("model") != args.served_name:
                return self._json(404, {"error": {"message": f"model {body.get('model')!r} does not exist"}})
            prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
            max_tokens = body.get("max_tokens", 16)
            if prompt_tokens + max_tokens > args.max_model_len:
                return self._json(400, {"error": {"message": (
                    f"This model's maximum context length is {args.max_model_len} tokens. However, you "
                    f"requested {prompt_tokens + max_tokens} tokens")}})
            if body.get("response_format", {}).get("type") == "json_schema":
                text = json.dumps({"answer": args.name})
            else:
                user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
                text = f"[{args.name}] echo: {user}"
            words = text.split(" ")[:max_tokens]
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(words)}
            if body.get("stream"):
                return self._stream(words, usage)
            self._json(200, {"id": "chatcmpl-fake", "choices": [{
                "index": 0, "message": {"role": "assistant", "content": " ".join(words)},
                "finish_reason": "stop"}], "usage": usage})

        def _stream(self, words: list[str], usage: dict) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            events = [{"choices": [{"index": 0, "delta": {"content": (" " if i else "") + w},
                                    "finish_reason": None}]} for i, w in enumerate(words)]
            events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            events.append({"choices": [], "usage": usage})
            for event in events:
                self.wfile.write(f"data: {json.dumps({'id': 'chatcmpl-fake', **event})}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.close_connection = True

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default="fake")
    parser.add_argument("--served-name", "--served-model-name", dest="served_name", default="fake")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--fail-status", type=int, default=0)
    parser.add_argument("--max-model-len", type=int, default=512)
    args, _ = parser.parse_known_args()  # ignore vLLM flags when started as a fake vLLM
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
