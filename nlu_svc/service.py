"""NLU servicer: translates protos to the domain (nlu_svc.parser) and back."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

import grpc

from alice import taxonomy
from alice.common.v1 import types_pb2
from alice.nlu.v1 import nlu_service_pb2, nlu_service_pb2_grpc
from alice.runtime.errors import InvalidArgument, Unavailable
from nlu_svc.parser import Parser

log = logging.getLogger(__name__)


def typed_slots(slots: Mapping[str, object]) -> types_pb2.Slots:
    """Canonical slots as the typed proto; a value the taxonomy rejects is logged and left out."""
    try:
        return taxonomy.slots_to_proto(slots)
    except taxonomy.TaxonomyError:
        message = types_pb2.Slots()
        for key, value in slots.items():
            try:
                message.MergeFrom(taxonomy.slots_to_proto({key: value}))
            except taxonomy.TaxonomyError as error:
                log.warning("slot %s dropped: %s", key, error)
        return message


class NluServicer(nlu_service_pb2_grpc.NluServiceServicer):
    """Parse and Embed; answers UNAVAILABLE until `attach` hands it a loaded parser."""

    def __init__(self) -> None:
        self._parser: Parser | None = None

    def attach(self, parser: Parser) -> None:
        self._parser = parser

    def _ready(self) -> Parser:
        if self._parser is None:
            raise Unavailable("the NLU model is still loading")
        return self._parser

    async def Parse(self, request: nlu_service_pb2.ParseRequest, context: grpc.aio.ServicerContext[Any, Any]
                    ) -> nlu_service_pb2.ParseResponse:
        parser = self._ready()
        reference: dt.datetime | None = None
        if request.HasField("reference_time"):
            try:
                reference = request.reference_time.ToDatetime(tzinfo=dt.UTC)
            except (ValueError, OverflowError) as error:
                raise InvalidArgument(f"reference_time is out of range: {error}") from error
        result = await parser.parse(request.text, reference, request.time_zone)
        return nlu_service_pb2.ParseResponse(
            intent=taxonomy.intent_value(result.intent),
            confidence=result.confidence,
            abstained=result.abstained,
            slots=typed_slots(result.slots),
            route_hint=taxonomy.route_value(result.route),
            alternatives=[nlu_service_pb2.IntentScore(intent=taxonomy.intent_value(name), probability=p)
                          for name, p in result.alternatives],
            normalized_text=result.normalized_text,
            missing_slots=list(result.missing_slots),
        )

    async def Embed(self, request: nlu_service_pb2.EmbedRequest, context: grpc.aio.ServicerContext[Any, Any]
                    ) -> nlu_service_pb2.EmbedResponse:
        vector, model = await self._ready().embed(request.text)
        return nlu_service_pb2.EmbedResponse(embedding=vector.tolist(), model=model)
