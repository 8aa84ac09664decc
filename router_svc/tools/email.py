"""email.create_draft: an e-mail draft in the user's own drafts in Redis; nothing is ever sent."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import idna

from alice.runtime.errors import InvalidArgument, ResourceExhausted
from router_svc.tools import replies
from router_svc.tools.base import ToolContext, ToolResult, has_control_chars, shown, storage

MAX_NAME_CHARS = 100
MAX_ADDRESS_CHARS = 254
MAX_LOCAL_PART_BYTES = 64
MAX_DRAFTS = 1000

_ASCII_ATEXT = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$")
_LDH_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NAME_PUNCTUATION = frozenset(" -'.’")


@dataclass(frozen=True)
class Recipient:
    """Who a draft is to: `text` exactly as given (whitespace trimmed), `kind` "name" or "address"."""

    text: str
    kind: str
    ascii_address: str | None = None
    """For an address: the domain in IDNA ASCII form (xn--...), as a mail server would receive it."""


def _atom_ok(atom: str) -> bool:
    """One dot-separated atom of a local part: RFC 5322 atext, plus any non-ASCII letter or digit (RFC 6531)."""
    if not atom:
        return False
    ascii_part = "".join(c for c in atom if c.isascii())
    if ascii_part and not _ASCII_ATEXT.match(ascii_part):
        return False
    return all(c.isascii() or c.isalnum() for c in atom)


def parse_address(text: str) -> Recipient:
    """A syntactically valid address (dot-atom local part, internationalised domain names allowed)."""
    local, _, domain = text.rpartition("@")
    if len(text) > MAX_ADDRESS_CHARS:
        raise InvalidArgument(f"e-mail address is longer than {MAX_ADDRESS_CHARS} characters")
    if not local or len(local.encode()) > MAX_LOCAL_PART_BYTES or not all(_atom_ok(a) for a in local.split(".")):
        raise InvalidArgument(f"to {shown(text)} is not a valid e-mail address (bad part before @)")
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise InvalidArgument(f"to {shown(text)} is not a valid e-mail address (bad domain)") from None
    labels = ascii_domain.split(".")
    if (
        len(labels) < 2
        or len(ascii_domain) > 253
        or not all(_LDH_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise InvalidArgument(f"to {shown(text)} is not a valid e-mail address (bad domain)")
    return Recipient(text=text, kind="address", ascii_address=f"{local}@{ascii_domain}")


def parse_recipient(value: object) -> Recipient:
    """`to` as the taxonomy states it: a person name or an e-mail address, exactly as written."""
    if not isinstance(value, str):
        raise InvalidArgument(f"to must be a string, got {type(value).__name__}")
    text = " ".join(value.split())
    if not text:
        raise InvalidArgument("to is empty")
    if has_control_chars(text):
        raise InvalidArgument("to contains control characters")
    if "@" in text:
        if " " in text:
            raise InvalidArgument(f"to {shown(text)} is not a valid e-mail address (contains spaces)")
        return parse_address(text)
    if (
        len(text) > MAX_NAME_CHARS
        or not any(c.isalpha() for c in text)
        or not all(c.isalpha() or c in _NAME_PUNCTUATION for c in text)
    ):
        raise InvalidArgument(
            f"to {shown(text)} must be a person name (letters, spaces, - ' .; at most "
            f"{MAX_NAME_CHARS} characters) or a valid e-mail address"
        )
    return Recipient(text=text, kind="name")


class EmailCreateDraftTool:
    name = "email.create_draft"
    arg_names: frozenset[str] = frozenset({"to"})

    async def run(self, args: Mapping[str, object], ctx: ToolContext) -> ToolResult:
        if args.get("to") is None:
            return ToolResult(reply=replies.ASK_RECIPIENT, data={"missing": ["to"]})
        recipient = parse_recipient(args["to"])
        draft_id = uuid.uuid4().hex
        draft = {
            "id": draft_id,
            "to": recipient.text,
            "to_kind": recipient.kind,
            "created_at": ctx.now.isoformat(timespec="seconds"),
            "status": "draft",
        }
        if recipient.ascii_address is not None:
            draft["to_ascii"] = recipient.ascii_address
        key = ctx.key("email")
        async with storage(ctx):
            if await ctx.redis.hlen(key) >= MAX_DRAFTS:
                raise ResourceExhausted(f"at most {MAX_DRAFTS} e-mail drafts per user")
            await ctx.redis.hset(key, draft_id, json.dumps(draft, ensure_ascii=False, sort_keys=True))
        return ToolResult(reply=replies.email_draft_created(recipient.text), data={"draft": draft}, mutated=True)


async def drafts(ctx: ToolContext) -> list[dict[str, object]]:
    """This user's e-mail drafts, by creation time."""
    async with storage(ctx):
        raws = await ctx.redis.hvals(ctx.key("email"))
    items: list[dict[str, object]] = [json.loads(r) for r in raws]
    return sorted(items, key=lambda d: (str(d["created_at"]), str(d["id"])))
