"""ExactSum: floats added without rounding, so any order of adding gives the same sum.

A float is m x 2**e exactly; a sum of such is n x 2**e for integers n and e. Python's
integers are unbounded, so the sum never rounds, and it is kept in one canonical form
(n odd, or zero), so two equal sums are equal values and equal text. Faster than
`fractions.Fraction`, which finds a greatest common divisor at every addition.
"""

from __future__ import annotations

import math

_KEPT_BITS = 64  # of the sum, when it is read back as a float (a float holds 53)


class ExactSum:
    __slots__ = ("e", "n")

    def __init__(self, n: int = 0, e: int = 0) -> None:
        self.n, self.e = n, e
        self._canonical()

    def add(self, x: float, times_two_to: int = 0) -> None:
        """Add x x 2**times_two_to, exactly (x finite)."""
        p, q = x.as_integer_ratio()  # q is a power of two
        self._add(p, times_two_to - (q.bit_length() - 1))

    def merge(self, other: ExactSum) -> None:
        self._add(other.n, other.e)

    def value(self, times_two_to: int = 0) -> float:
        """The sum x 2**times_two_to, as the nearest float (to 64 bits, then rounded)."""
        n, e = self.n, self.e + times_two_to
        extra = n.bit_length() - _KEPT_BITS
        if extra > 0:
            n >>= extra
            e += extra
        return math.ldexp(float(n), e)

    def _add(self, n: int, e: int) -> None:
        if n == 0:
            return
        if self.n == 0:
            self.n, self.e = n, e
        elif e < self.e:
            self.n = (self.n << (self.e - e)) + n
            self.e = e
        else:
            self.n += n << (e - self.e)
        self._canonical()

    def _canonical(self) -> None:
        if self.n == 0:
            self.e = 0
            return
        zeros = (self.n & -self.n).bit_length() - 1
        if zeros:
            self.n >>= zeros
            self.e += zeros

    def to_text(self) -> str:
        return f"{self.n:x}p{self.e}"

    @classmethod
    def from_text(cls, text: str) -> ExactSum:
        n, _, e = text.partition("p")
        return cls(int(n, 16), int(e))

    def copy(self) -> ExactSum:
        return ExactSum(self.n, self.e)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExactSum) and (self.n, self.e) == (other.n, other.e)

    def __repr__(self) -> str:
        return f"ExactSum({self.to_text()})"
