"""``POST /ingest/v1/{source}/{entity}``: for systems that publish themselves but speak
no Kafka.

The body is a JSON array of records shaped as the source's own API or table
(``spec/sources/*.md``). Each is validated with its pydantic model; the answer
says, record by record, whether it was accepted and, if not, why. Accepted
records travel on in their Avro schema, refused ones as JSON text, in one
batch on ``raw.<source>.<entity>``, so a refused record also lands in
``grid.dead_letters`` with its reason: nothing sent is lost. A wrong or missing
bearer token is 401, an unknown source or entity 404, a body that is not a
JSON array 400, and a batch larger than ``[hub] ingest_max_records`` or
``ingest_max_bytes`` 413 (send it in smaller pieces).
"""

from __future__ import annotations

import hmac
import itertools
import json
import threading
from dataclasses import dataclass
from typing import Any

from gridhub.connectors.base.checkpoint import FOREIGN_SEQ_START
from gridhub.connectors.base.publisher import EnvelopePublisher
from gridhub.schemas import ENTITY_MODELS, encode_dict
from pydantic import ValidationError

from gridhub.config import HubConfig
from gridhub.errors import SourceUnavailable
from gridhub.topics import SOURCE_ENTITIES, Topics

PREFIX = "/ingest/v1/"


@dataclass(frozen=True)
class IngestAnswer:
    """Status code and JSON body of one ingest request."""

    status: int
    body: dict[str, Any]


class HttpIngest:
    """Validates and publishes the batches systems send over HTTP."""

    def __init__(self, config: HubConfig, bootstrap: str, topics: Topics) -> None:
        assert config.ingest_token is not None
        self._token = config.ingest_token.get_secret_value().encode("utf-8")
        self.max_records = config.ingest_max_records
        self.max_bytes = config.ingest_max_bytes
        self._bootstrap = bootstrap
        self._topics = topics
        self._publisher: EnvelopePublisher | None = None
        self._lock = threading.Lock()
        self._seq = itertools.count(FOREIGN_SEQ_START)

    def handle(self, path: str, authorization: str | None, body: bytes) -> IngestAnswer:
        """Answer one ``POST``; never raises."""
        source, _, entity = path.removeprefix(PREFIX).strip("/").partition("/")
        if not path.startswith(PREFIX) or entity not in SOURCE_ENTITIES.get(source, ()):
            known = ", ".join(f"{s}/{e}" for s, es in SOURCE_ENTITIES.items() for e in es)
            return IngestAnswer(404, {"error": f"no such source/entity; one of {known}"})
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), self._token):
            return IngestAnswer(401, {"error": "missing or wrong bearer token"})
        if len(body) > self.max_bytes:
            return IngestAnswer(
                413, {"error": f"{len(body)} bytes; at most {self.max_bytes} per request"}
            )
        try:
            records = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return IngestAnswer(400, {"error": f"the body is not JSON: {exc}"})
        if not isinstance(records, list):
            return IngestAnswer(400, {"error": "the body must be a JSON array of records"})
        if len(records) > self.max_records:
            return IngestAnswer(
                413, {"error": f"{len(records)} records; at most {self.max_records} per request"}
            )
        encoded, results = self._validate(entity, records)
        if encoded:
            try:
                self._publish(source, entity, encoded)
            except SourceUnavailable as exc:
                return IngestAnswer(503, {"error": f"{exc}; nothing was taken, send it again"})
        accepted = sum(1 for r in results if r["status"] == "accepted")
        return IngestAnswer(
            200,
            {"accepted": accepted, "rejected": len(results) - accepted, "results": results},
        )

    def _validate(
        self, entity: str, records: list[Any]
    ) -> tuple[list[bytes], list[dict[str, Any]]]:
        model = ENTITY_MODELS[entity]
        encoded: list[bytes] = []
        results: list[dict[str, Any]] = []
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                results.append({"index": index, "status": "rejected", "error": "not an object"})
                continue
            try:
                valid = model.model_validate(record)
            except ValidationError as exc:
                error = exc.errors()[0]
                where = ".".join(str(part) for part in error["loc"])
                results.append(
                    {
                        "index": index,
                        "status": "rejected",
                        "error": f"{where}: {error['msg']} (kept in grid.dead_letters)",
                    }
                )
                encoded.append(json.dumps(record, ensure_ascii=False).encode("utf-8"))
                continue
            encoded.append(encode_dict(model.__name__, valid.model_dump()))
            results.append({"index": index, "status": "accepted"})
        return encoded, results

    def _publish(self, source: str, entity: str, records: list[bytes]) -> None:
        with self._lock:
            if self._publisher is None:
                self._publisher = EnvelopePublisher(
                    self._bootstrap, self._topics, client_id="gridhub-http-ingest"
                )
            self._publisher.publish(source, entity, next(self._seq), records, {"via": "http"})

    def close(self) -> None:
        """Close the producer."""
        with self._lock:
            if self._publisher is not None:
                self._publisher.close()
                self._publisher = None
