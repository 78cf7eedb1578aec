"""Agent cards: what an agent says about itself at registration (docs/protocol.md section 21). No I/O.

A card travels in the REGISTER payload (`payload.card`), so the agent's REGISTER signature covers
it: the gateway hands the whole signed REGISTER object to whoever discovers the agent, and the
receiver checks it against the agent's DID without trusting the gateway (`check_proof`).

The schema is small and bounded; its field names are those of A2A's AgentCard where the meaning
is the same (name, description, version); `capabilities` are the ids of A2A's skills, not A2A's
`capabilities` object. Other members are free-form and kept as given, within MAX_CARD_BYTES.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .canonical import canonicalize
from .errors import ErrorCode, ProtocolError

MAX_CARD_BYTES = 4096  # the card's RFC 8785 canonical form
MAX_NAME = 64
MAX_DESCRIPTION = 1024
MAX_VERSION = 32
MAX_CAPABILITIES = 32
MAX_CAPABILITY = 64
# A capability is a short token: letters, digits and . _ : / + - (e.g. "translate", "llm:chat").
CAPABILITY = re.compile(r"[A-Za-z0-9._:/+\-]{1,64}\Z")
_STRINGS = {"name": MAX_NAME, "description": MAX_DESCRIPTION, "version": MAX_VERSION}


@dataclass(frozen=True, slots=True)
class Card:
    """A validated card: the members discovery matches on, and the card as the agent sent it."""

    name: str
    capabilities: tuple[str, ...]
    document: dict[str, Any]  # the whole card, free-form members included


@dataclass(frozen=True, slots=True)
class Profile:
    """What a REGISTER said about its agent beyond its DID: its card (None: none given), whether
    it is unlisted, and the signed REGISTER object (fields and signature) that proves the card."""

    card: Card | None
    unlisted: bool
    register: dict[str, Any] | None


# Most agents register without a card and listed: they share one Profile (it is immutable).
LISTED_WITHOUT_CARD = Profile(None, False, None)


def parse_card(value: Any, message_id: str | None = None) -> Card:
    """Validate `payload.card`; MALFORMED_MESSAGE naming the member that is wrong.

    Cheap checks only (types, lengths, a rough size); `check_card_size` makes the exact one once
    the REGISTER's signature verified (the envelope is then known to canonicalize).
    """
    if type(value) is not dict:
        raise _bad("'card' must be an object", message_id)
    for member, limit in _STRINGS.items():
        text = value.get(member)
        if text is None and member != "name":
            continue
        if type(text) is not str or not 0 < len(text) <= limit:
            raise _bad(f"card.{member} must be a string of 1-{limit} characters", message_id)
    capabilities = value.get("capabilities", [])
    if type(capabilities) is not list or len(capabilities) > MAX_CAPABILITIES:
        raise _bad(f"card.capabilities must be a list of at most {MAX_CAPABILITIES} strings",
                   message_id)
    for index, capability in enumerate(capabilities):
        if type(capability) is not str or CAPABILITY.match(capability) is None:
            raise _bad(f"card.capabilities[{index}] must be 1-{MAX_CAPABILITY} characters of "
                       "A-Z a-z 0-9 . _ : / + -", message_id)
    if len(set(capabilities)) != len(capabilities):
        raise _bad("card.capabilities must not repeat a capability", message_id)
    if len(json.dumps(value, ensure_ascii=False, separators=(",", ":"))) > 2 * MAX_CARD_BYTES:
        raise _bad(f"'card' is far over {MAX_CARD_BYTES} bytes", message_id)
    return Card(value["name"], tuple(capabilities), value)


def check_card_size(card: Card, message_id: str | None = None) -> None:
    """The exact bound: at most MAX_CARD_BYTES of canonical JSON."""
    size = len(canonicalize(card.document))
    if size > MAX_CARD_BYTES:
        raise _bad(f"'card' is {size} bytes; at most {MAX_CARD_BYTES}", message_id)


def parse_unlisted(value: Any, message_id: str | None = None) -> bool:
    """`payload.unlisted`: absent or a boolean."""
    if value is None:
        return False
    if type(value) is not bool:
        raise _bad("'unlisted' must be true or false", message_id)
    return value


def check_proof(did: str, card: dict[str, Any], register: dict[str, Any]) -> None:
    """Check that `register` (a DISCOVERED entry's signed REGISTER) is `did`'s and holds `card`.

    For receivers of discovery answers (the SDK): ProtocolError when the REGISTER was not signed
    by `did`'s key or carries another card.
    """
    from nacl.signing import VerifyKey

    from .did import public_key_from_did
    from .messages import Envelope

    fields = {name: value for name, value in register.items() if name != "signature"}
    signature = register.get("signature")
    if (type(signature) is not str or fields.get("type") != "REGISTER"
            or fields.get("from") != did or type(fields.get("payload")) is not dict):
        raise ProtocolError(ErrorCode.INVALID_SIGNATURE, "the card's proof is not a REGISTER "
                            "signed by the agent")
    if fields["payload"].get("card") != card:
        raise ProtocolError(ErrorCode.INVALID_SIGNATURE, "the card is not the one its agent signed")
    for member in ("id", "to", "timestamp", "version"):
        fields.setdefault(member, None)
    Envelope(fields, signature, True).verify(VerifyKey(public_key_from_did(did)))


def _bad(message: str, message_id: str | None) -> ProtocolError:
    return ProtocolError(ErrorCode.MALFORMED_MESSAGE, message, correlation_id=message_id)
