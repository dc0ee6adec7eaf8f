"""A scripted OpenAI-compatible server: each role's requests are answered from a script.

    python scripted_openai.py --port P [--script script.json]

The script maps a served model name (the tests serve one per designer role) to a list of
answers, used in order: {"text": "..."}, {"json": {...}} (sent as its JSON text) or
{"status": 503, "message": "..."} (an upstream error). A role whose list is used up gets a
500 naming it. GET /requests lists every request received with the answer given;
POST /script replaces the script and forgets the requests (one server serves many tests).
Reuses the gateway tests' fake server for everything but the answers.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))
from fake_openai import make_handler  # noqa: E402


def scripted_handler(args: argparse.Namespace, script: dict[str, list[dict]]):
    base = make_handler(args)
    lock = threading.Lock()
    positions: dict[str, int] = {}
    received: list[dict] = []

    class Handler(base):
        def do_GET(self) -> None:
            if self.path == "/requests":
                with lock:
                    return self._json(200, {"requests": received})
            super().do_GET()

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if self.path == "/script":
                with lock:
                    script.clear()
                    script.update(body)
                    positions.clear()
                    received.clear()
                return self._json(200, {})
            if self.path != "/v1/chat/completions":
                return self._json(404, {"error": {"message": "not found"}})
            model = body.get("model", "")
            with lock:
                position = positions.get(model, 0)
                answers = script.get(model, [])
                answer = answers[position] if position < len(answers) else None
                positions[model] = position + 1
                received.append({"model": model, "index": position, "messages": body["messages"],
                                 "response_format": body.get("response_format"),
                                 "answer": answer})
            if answer is None:
                return self._json(500, {"error": {"message": f"script for {model!r} is used up "
                                                             f"({len(answers)} answers)"}})
            if "status" in answer:
                return self._json(answer["status"], {"error": {"message": answer.get("message", "")}})
            text = answer["text"] if "text" in answer else json.dumps(answer["json"])
            prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split())}
            self._json(200, {"id": f"chatcmpl-{model}-{position}", "choices": [{
                "index": 0, "message": {"role": "assistant", "content": text},
                "finish_reason": "stop"}], "usage": usage})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--script", type=Path)
    args = parser.parse_args()
    args.name = args.served_name = "scripted"
    args.delay, args.fail_status, args.max_model_len = 0.0, 0, 1 << 20
    script = json.loads(args.script.read_text()) if args.script else {}
    server = ThreadingHTTPServer(("127.0.0.1", args.port), scripted_handler(args, script))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
