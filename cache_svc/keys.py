"""The one key builder: every Redis key the cache reads or writes comes from a function here."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from urllib.parse import quote

PREFIX = "alice:c1"
"""Namespace and layout version of every cache key; bump the version to orphan an incompatible layout."""


def _scope(user_id: str) -> str:
    """Redis Cluster hash tag for one user's personal keys: all of them land on one shard."""
    return "{u:" + quote(user_id, safe="") + "}"


def canonical_slots(slots: Mapping[str, object]) -> str:
    """Slots as a canonical JSON string: sorted keys, casefolded text, sorted attendees."""
    canonical: dict[str, object] = {}
    for key in sorted(slots):
        value = slots[key]
        if isinstance(value, str):
            canonical[key] = " ".join(value.casefold().split())
        elif isinstance(value, list | tuple):
            canonical[key] = sorted(" ".join(str(v).casefold().split()) for v in value)
        else:
            canonical[key] = value
    return json.dumps(canonical, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _base(user_id: str | None) -> str:
    return f"{PREFIX}:{_scope(user_id)}" if user_id is not None else PREFIX


def request_digest(intent: str, slots: Mapping[str, object], text_form: str, user_id: str | None,
                   answer_version: str) -> str:
    """Identity of a canonical request: equal for every request the same cached answer may serve."""
    return _digest(intent, canonical_slots(slots), text_form, user_id or "", answer_version)


def l1_key(intent: str, slots: Mapping[str, object], text_form: str, user_id: str | None,
           answer_version: str) -> str:
    """L1 entry key. `text_form` is "" for intents whose slots decide the answer; `user_id` None for shared ones."""
    return f"{_base(user_id)}:l1:{intent}:{request_digest(intent, slots, text_form, user_id, answer_version)}"


def l3_key(intent: str, slots: Mapping[str, object], text_form: str, user_id: str | None,
           answer_version: str) -> str:
    """Negative-cache key of a request: same identity as its L1 key, another tier."""
    return f"{_base(user_id)}:l3:{intent}:{request_digest(intent, slots, text_form, user_id, answer_version)}"


def alias_text(text: str) -> str:
    """The text form of the L1 alias: casefolded, whitespace collapsed, end punctuation dropped."""
    return " ".join(text.casefold().split()).strip(" ?!.,;:")


def alias_key(text: str, reference_date: str, user_id: str | None, answer_version: str) -> str:
    """L1 text alias: the same text on the same local day (relative words such as "imorgon" depend on it).

    It lets the router look the cache up in parallel with the NLU; an alias is written next to every L1 entry,
    under the entry's scope, so a personal answer is only ever found by its own user.
    """
    digest = _digest(alias_text(text), reference_date, user_id or "", answer_version)
    return f"{_base(user_id)}:l1a:{digest}"


def l2_set_key(intent: str, slots: Mapping[str, object], user_id: str | None, answer_version: str,
               embedding_model: str, bucket: str) -> str:
    """The small vector set holding one intent+slot key's entries (one lexical bucket of it, see docs/cache.md)."""
    partition = _digest(intent, canonical_slots(slots), user_id or "", answer_version, embedding_model, bucket)
    return f"{_base(user_id)}:l2:{intent}:{partition}"


def user_index(user_id: str, intent: str | None = None) -> str:
    """Set of a user's personal keys (all, or one intent's), for Invalidate without scanning."""
    return f"{_base(user_id)}:idx" + (f":{intent}" if intent else "")


def intent_index(intent: str) -> str:
    """Set of every key stored for an intent (shared and personal), for Invalidate(intent)."""
    return f"{PREFIX}:idx:{intent}"


def failure_index(downstream: str) -> str:
    """Set of L3 keys remembered for one downstream, for ClearFailures(downstream)."""
    return f"{PREFIX}:l3idx:" + quote(downstream, safe="")


FAILURE_DOWNSTREAMS = f"{PREFIX}:l3idx"
"""Set of downstream names that have remembered failures (for ClearFailures of all)."""
