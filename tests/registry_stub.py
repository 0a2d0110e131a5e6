"""A stand-in for a Confluent-compatible schema registry, for tests of the registry wire format.

It serves the two calls s321's serializer makes (register a schema under a subject, fetch a
schema by id) over HTTP on loopback, so that separate processes (a worker, the generator, the
demo's reader) share one set of schema ids. It counts the calls, so a test can show which
process registered or looked up what. No registry server can be installed from this machine's
package registries, which is why the tests use this one.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class RegistryStub:
    """Subjects and schema ids in memory; ``url`` is where it answers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.schemas: dict[int, str] = {}  # id -> schema text
        self.subjects: dict[str, list[int]] = {}  # subject -> ids, oldest first
        self.calls: Counter[str] = Counter()  # "register <subject>", "get <id>"
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                m = re.fullmatch(r"/subjects/([^/?]+)/versions(\?.*)?", self.path)
                if m is None:
                    self._reply(404, {"error_code": 404, "message": "not found"})
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self._reply(200, stub.register(m.group(1), body["schema"]))

            def do_GET(self) -> None:
                m = re.fullmatch(r"/schemas/ids/(\d+)(\?.*)?", self.path)
                found = stub.get(int(m.group(1))) if m else None
                if found is None:
                    self._reply(404, {"error_code": 40403, "message": "Schema not found"})
                else:
                    self._reply(200, {"schema": found, "schemaType": "AVRO"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def register(self, subject: str, schema: str) -> dict[str, Any]:
        with self._lock:
            self.calls[f"register {subject}"] += 1
            canonical = json.dumps(json.loads(schema), sort_keys=True)
            known = {text: i for i, text in self.schemas.items()}
            schema_id = known.get(canonical) or len(self.schemas) + 1
            self.schemas[schema_id] = canonical
            ids = self.subjects.setdefault(subject, [])
            if schema_id not in ids:
                ids.append(schema_id)
            return {"id": schema_id, "subject": subject, "version": ids.index(schema_id) + 1}

    def get(self, schema_id: int) -> str | None:
        with self._lock:
            self.calls[f"get {schema_id}"] += 1
            return self.schemas.get(schema_id)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
