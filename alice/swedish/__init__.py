"""Deterministic, model-free Swedish language support shared by the services: normalisation and slots."""

from alice.swedish.slots import IntentSlots, extract_slots, required_slots
from alice.swedish.text import fold, normalize

__all__ = ["IntentSlots", "extract_slots", "fold", "normalize", "required_slots"]
