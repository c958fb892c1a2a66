"""Path parameters that name a resource by its 32-byte hash (`{digest:hash32}`): a path matches
such a route only when the segment is `0x` and 64 hex digits, so `GET /v1/orders/batch` is the
405 of `POST /v1/orders/batch` (not a malformed digest), and any other segment is a 404."""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor


class Hash32(Convertor[str]):
    """`0x` and 64 hex digits, kept as the string."""

    regex = "0x[0-9a-fA-F]{64}"

    def convert(self, value: str) -> str:
        """The segment as it came."""
        return value

    def to_string(self, value: str) -> str:
        """The segment of a URL built for `value`."""
        return value


register_url_convertor("hash32", Hash32())
