"""The subset of RFC 8941 structured fields that signature headers use (sans-I/O).

``Signature-Input`` and ``Signature`` are structured-field dictionaries: :func:`parse_dictionary`
reads them into items and inner lists with parameters, and the serializers write parameters
back canonically (``@signature-params`` is signed as serialized).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NoReturn

__all__ = [
    "BareItem",
    "InnerList",
    "Item",
    "MalformedFieldError",
    "Token",
    "parse_dictionary",
    "serialize_bare",
    "serialize_params",
]


class MalformedFieldError(ValueError):
    """A header that is not the structured field it should be (names where it broke)."""


@dataclass(frozen=True, slots=True)
class Token:
    """A structured-field token (unquoted), as opposed to a string."""

    value: str


type BareItem = str | int | float | bool | bytes | Token
type Item = tuple[BareItem, dict[str, BareItem]]


@dataclass(frozen=True, slots=True)
class InnerList:
    """A structured-field inner list: ``(item item ...)`` and its parameters."""

    items: tuple[Item, ...]
    params: dict[str, BareItem] = field(default_factory=dict)


_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_NUMBER = re.compile(r"-?([0-9]{1,15})(\.[0-9]{1,3})?")
_BYTES = re.compile(r":([A-Za-z0-9+/=]*):")


def parse_dictionary(text: str, header: str) -> dict[str, InnerList | Item]:
    """An RFC 8941 dictionary; SignatureError naming ``header`` when it is malformed."""
    return _Parser(text, header).dictionary()


class _Parser:
    def __init__(self, text: str, header: str) -> None:
        self.text, self.header, self.pos = text, header, 0

    def fail(self, what: str) -> NoReturn:
        raise MalformedFieldError(f"malformed {self.header} header: {what} at character {self.pos}")

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def skip(self, chars: str) -> None:
        while self.peek() and self.peek() in chars:
            self.pos += 1

    def match(self, pattern: re.Pattern[str], what: str) -> re.Match[str]:
        found = pattern.match(self.text, self.pos)
        if found is None:
            self.fail(f"expected {what}")
        self.pos = found.end()
        return found

    def dictionary(self) -> dict[str, InnerList | Item]:
        members: dict[str, InnerList | Item] = {}
        self.skip(" ")
        while self.pos < len(self.text):
            key = self.match(_KEY, "a key").group()
            if self.peek() == "=":
                self.pos += 1
                members[key] = self.inner_list() if self.peek() == "(" else self.item()
            else:
                members[key] = (True, self.params())
            self.skip(" \t")
            if self.pos == len(self.text):
                return members
            if self.peek() != ",":
                self.fail("expected ','")
            self.pos += 1
            self.skip(" \t")
            if self.pos == len(self.text):
                self.fail("trailing ','")
        if not members:
            self.fail("empty dictionary")
        return members

    def inner_list(self) -> InnerList:
        self.pos += 1  # "("
        items: list[Item] = []
        while True:
            self.skip(" ")
            if self.peek() == ")":
                self.pos += 1
                return InnerList(tuple(items), self.params())
            items.append(self.item())
            if self.peek() not in (" ", ")"):
                self.fail("expected ' ' or ')' in an inner list")

    def item(self) -> Item:
        return self.bare(), self.params()

    def params(self) -> dict[str, BareItem]:
        params: dict[str, BareItem] = {}
        while self.peek() == ";":
            self.pos += 1
            self.skip(" ")
            key = self.match(_KEY, "a parameter key").group()
            value: BareItem = True
            if self.peek() == "=":
                self.pos += 1
                value = self.bare()
            params[key] = value
        return params

    def bare(self) -> BareItem:
        char = self.peek()
        if not char:
            self.fail("unexpected end")
        if char == '"':
            return self.string()
        if char == ":":
            try:
                return base64.b64decode(self.match(_BYTES, "a byte sequence")[1], validate=True)
            except binascii.Error:
                self.fail("invalid base64 in a byte sequence")
        if char == "?":
            if self.text[self.pos + 1 : self.pos + 2] not in ("0", "1"):
                self.fail("expected ?0 or ?1")
            self.pos += 2
            return self.text[self.pos - 1] == "1"
        if char in "-0123456789":
            number = self.match(_NUMBER, "a number")
            return float(number.group()) if number[2] else int(number.group())
        return Token(self.match(_TOKEN, "an item").group())

    def string(self) -> str:
        self.pos += 1  # opening quote
        out: list[str] = []
        while (char := self.peek()) != '"':
            if not char:
                self.fail("unterminated string")
            if char == "\\":
                self.pos += 1
                char = self.peek()
                if char not in ('"', "\\"):
                    self.fail("invalid escape in a string")
            elif not " " <= char <= "~":
                self.fail("invalid character in a string")
            out.append(char)
            self.pos += 1
        self.pos += 1
        return "".join(out)


def serialize_params(params: Mapping[str, BareItem]) -> str:
    return "".join(
        f";{key}" if value is True else f";{key}={serialize_bare(value)}"
        for key, value in params.items()
    )


def serialize_bare(value: BareItem) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = f"{value:.3f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    if isinstance(value, Token):
        return value.value
    if isinstance(value, bytes):
        return f":{base64.b64encode(value).decode()}:"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
