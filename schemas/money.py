"""Money: a Decimal amount with an ISO-4217 currency code. Never a float."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field, PlainSerializer, WithJsonSchema

# ISO 4217 codes in use (precious metals and the test code XXX left out).
ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP
    DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR
    IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD
    MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
    PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD
    SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS
    VED VES VND VUV WST XAF XCD XCG XDR XOF XPF XSU XUA YER ZAR ZMW ZWG ZWL""".split()
)


def known_currency(code: str) -> str:
    if code not in ISO_4217:
        raise ValueError(f"{code!r} is not an ISO-4217 currency code (e.g. USD, EUR, VND)")
    return code


Currency = Annotated[
    str,
    Field(min_length=3, max_length=3),
    AfterValidator(known_currency),
    WithJsonSchema(
        {"type": "string", "enum": sorted(ISO_4217), "description": "ISO-4217 currency code."}
    ),
]


def plain_notation(amount: Decimal) -> str:
    """'100', never '1E+2': amounts are written as people and other decoders expect."""
    return format(amount, "f")


_AS_PLAIN_STRING = PlainSerializer(plain_notation, return_type=str, when_used="json")

# The JSON Schema of an amount is what the canonical encoding writes: a decimal string.
# (Decoding also accepts a JSON number; telling producers so would invite binary floats.)
Amount = Annotated[
    Decimal,
    Field(ge=0, max_digits=18, decimal_places=4, allow_inf_nan=False),
    _AS_PLAIN_STRING,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^[0-9]{1,14}(\.[0-9]{1,4})?$",
            "description": "Decimal amount as a string: up to 14 digits, 4 decimal places.",
        }
    ),
]
SignedAmount = Annotated[
    Decimal,
    Field(max_digits=18, decimal_places=4, allow_inf_nan=False),
    _AS_PLAIN_STRING,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^-?[0-9]{1,14}(\.[0-9]{1,4})?$",
            "description": "Signed decimal amount as a string: up to 14 digits, 4 decimals.",
        }
    ),
]
