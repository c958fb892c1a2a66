"""Integers on the API's JSON wire, for clients whose numbers are doubles (JavaScript).

A JSON number holds an integer exactly in such a client only up to `MAX_SAFE_INTEGER` (2^53 - 1),
while prices, sizes, amounts, nonces, expiries and salts are uint64 or uint256. So:
- a request's integer field (`Uint(bound)`) takes a JSON integer or its decimal string (ASCII
  digits, no sign, no leading zero), from 0 to `bound - 1`; a JSON number with a zero fraction
  counts as that integer, as JSON Schema says;
- an answer's integer field (`Uint(bound)`, or `WireInt` when it is signed or a sum) is a JSON
  number up to `MAX_SAFE_INTEGER` in magnitude and a decimal string above (`wire_int`), and so are
  the WebSocket stream's.
The JSON schema of each (the OpenAPI document) says exactly that: `anyOf` an integer with its
bounds and a string whose pattern (`decimal_pattern`) matches exactly the decimals in range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

MAX_SAFE_INTEGER = 2**53 - 1
"""The largest integer a double holds exactly, with every integer below it."""


def wire_int(value: int) -> int | str:
    """An integer as an answer carries it: a JSON number up to `MAX_SAFE_INTEGER` in magnitude,
    its decimal string above."""
    return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else str(value)


def decimal_pattern(bound: int) -> str:
    """A regular expression (ECMA-262 and Python alike) matching exactly the decimal strings of
    the integers from 0 to `bound - 1`: ASCII digits, no leading zero, no sign."""
    top = str(bound - 1)
    alternatives = ["0"]
    if len(top) > 1:
        fewer = len(top) - 2  # fewer digits than `top`
        alternatives.append("[1-9]" + (f"[0-9]{{0,{fewer}}}" if fewer else ""))
    for i, digit in enumerate(top):  # as many digits: `top`'s first i, then a smaller one
        smallest = "1" if i == 0 else "0"
        if digit > smallest:
            below = smallest if digit == chr(ord(smallest) + 1) else f"[{smallest}-{chr(ord(digit) - 1)}]"
            rest = len(top) - i - 1
            alternatives.append(
                top[:i] + below + ("" if rest == 0 else "[0-9]" + (f"{{{rest}}}" if rest > 1 else ""))
            )
    if top != "0":
        alternatives.append(top)
    return "^(?:" + "|".join(alternatives) + ")$"


def _from_float(low: int, bound: int) -> Any:
    def check(value: float) -> int:
        if not value.is_integer() or not low <= value < bound:
            raise PydanticCustomError("int_range", "out of range")  # replaced by the union's message
        return int(value)

    return check


@dataclass(frozen=True)
class Uint:
    """`Annotated[int, Uint(bound)]`: an unsigned integer below `bound` (module docstring)."""

    bound: int

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        pattern = decimal_pattern(self.bound)
        return core_schema.union_schema(
            [
                core_schema.int_schema(ge=0, lt=self.bound, strict=True),
                core_schema.no_info_after_validator_function(
                    int, core_schema.str_schema(pattern=pattern, strict=True)
                ),
                core_schema.no_info_after_validator_function(
                    _from_float(0, self.bound), core_schema.float_schema(strict=True, allow_inf_nan=False)
                ),
            ],
            mode="left_to_right",
            custom_error_type="uint",
            custom_error_message=f"must be an integer from 0 to {self.bound - 1}, or its decimal string",
            serialization=core_schema.plain_serializer_function_ser_schema(wire_int, when_used="json"),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        if handler.mode == "serialization":  # a number within MAX_SAFE_INTEGER, a decimal beyond
            number = {"type": "integer", "minimum": 0, "maximum": min(self.bound - 1, MAX_SAFE_INTEGER)}
            return {"anyOf": [number, {"type": "string", "pattern": decimal_pattern(self.bound)}]}
        return {
            "anyOf": [
                {"type": "integer", "minimum": 0, "exclusiveMaximum": self.bound},
                {"type": "string", "pattern": decimal_pattern(self.bound)},
            ]
        }


class WireInt:
    """`Annotated[int, WireInt()]`: an answer's integer of any size and sign (a position, a sum
    of sizes, a ratio), as `wire_int` sends it."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.int_schema(
            serialization=core_schema.plain_serializer_function_ser_schema(wire_int, when_used="json")
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        number = {"type": "integer", "minimum": -MAX_SAFE_INTEGER, "maximum": MAX_SAFE_INTEGER}
        return {"anyOf": [number, {"type": "string", "pattern": "^-?(?:0|[1-9][0-9]*)$"}]}


Uint8 = Annotated[int, Uint(2**8)]
Uint16 = Annotated[int, Uint(2**16)]
Uint64 = Annotated[int, Uint(2**64)]
Uint256 = Annotated[int, Uint(2**256)]
BigInt = Annotated[int, WireInt()]
"""An answer's signed or summed integer."""
