"""Pure-Python arithmetic on short-Weierstrass curves y² = x³ + ax + b over GF(p).

Used by the portable SM2 backend (where tongsuopy has no wheel) and by the SM2 key exchange,
which must also run on the example curves of GB/T 32918 (curve parameters are data here).

Speed comes from the representation, not from tricks in the field arithmetic:

* Jacobian coordinates (X, Y, Z) ~ (X/Z², Y/Z³): no field inversion until the end;
  doubling specialised for a = -3 (the SM2 curve), mixed Jacobian+affine additions.
* Fixed base (the generator): a table of d·16^i·G in affine form, built once per curve
  and process; k·G is then 64 mixed additions and no doubling.
* Variable base: width-5 NAF with the odd multiples converted to affine by one batched
  inversion; u·G + v·Q (verification) shares nothing but the final inversion.

Not constant-time (Python integers are not); the native backend is the one for hostile
co-tenants. Results are cross-checked by the test suite against the native backend, the
published vectors and the OpenSSL command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Point = tuple[int, int]
_Jac = tuple[int, int, int]  # Z == 0 is the point at infinity

_WINDOW = 4  # fixed-base window: 2^4 - 1 entries per window of 4 bits
_WNAF = 5  # variable-base NAF width


@dataclass(eq=False)
class Curve:
    """Domain parameters; ``h`` is the cofactor. Tables are built lazily and cached."""

    name: str
    p: int
    a: int
    b: int
    n: int
    gx: int
    gy: int
    h: int = 1
    _table: list[Any] | None = field(default=None, init=False, repr=False)

    @property
    def g(self) -> Point:
        return (self.gx, self.gy)

    @property
    def size(self) -> int:
        """Bytes of a field element (for encodings)."""
        return (self.p.bit_length() + 7) // 8

    # --- validation ---------------------------------------------------------------------
    def contains(self, point: Point) -> bool:
        x, y = point
        p = self.p
        return 0 <= x < p and 0 <= y < p and (y * y - (x * x * x + self.a * x + self.b)) % p == 0

    # --- public operations --------------------------------------------------------------
    def multiply(self, k: int, point: Point) -> Point | None:
        """k·point in affine coordinates, None for the point at infinity."""
        if point == (self.gx, self.gy):
            return self.multiply_base(k)
        return self._to_affine(self._mul_wnaf(k % self.n if self.h == 1 else k, point))

    def multiply_base(self, k: int) -> Point | None:
        return self._to_affine(self._mul_base(k % self.n))

    def multiply_sum(
        self, u: int, v: int, point: Point, table: list[list[Point]] | None = None
    ) -> Point | None:
        """u·G + v·point (signature verification); ``table`` from ``precompute(point)``."""
        a = self._mul_base(u % self.n)
        b = self._mul_table(v % self.n, table) if table else self._mul_wnaf(v % self.n, point)
        return self._to_affine(self._add(a, b))

    def add(self, p1: Point | None, p2: Point | None) -> Point | None:
        if p1 is None:
            return p2
        if p2 is None:
            return p1
        return self._to_affine(self._add((p1[0], p1[1], 1), (p2[0], p2[1], 1)))

    # --- Jacobian primitives ------------------------------------------------------------
    def _to_affine(self, q: _Jac) -> Point | None:
        x, y, z = q
        if z == 0:
            return None
        p = self.p
        zi = pow(z, -1, p)
        zi2 = zi * zi % p
        return (x * zi2 % p, y * zi2 * zi % p)

    def _double(self, q: _Jac) -> _Jac:
        x, y, z = q
        if z == 0 or y == 0:
            return (1, 1, 0)
        p = self.p
        yy = y * y % p
        s = 4 * x * yy % p
        zz = z * z % p
        if self.a == p - 3:  # 3x² + a·z⁴ = 3(x - z²)(x + z²)
            m = 3 * (x - zz) * (x + zz) % p
        else:
            m = (3 * x * x + self.a * zz * zz) % p
        x3 = (m * m - 2 * s) % p
        return (x3, (m * (s - x3) - 8 * yy * yy) % p, 2 * y * z % p)

    def _add_affine(self, q: _Jac, x2: int, y2: int) -> _Jac:
        """Jacobian + affine (the other operand never infinity)."""
        x1, y1, z1 = q
        if z1 == 0:
            return (x2, y2, 1)
        p = self.p
        z1z1 = z1 * z1 % p
        u2 = x2 * z1z1 % p
        s2 = y2 * z1 * z1z1 % p
        h = (u2 - x1) % p
        r = (s2 - y1) % p
        if h == 0:
            return self._double(q) if r == 0 else (1, 1, 0)
        hh = h * h % p
        hhh = h * hh % p
        v = x1 * hh % p
        x3 = (r * r - hhh - 2 * v) % p
        return (x3, (r * (v - x3) - y1 * hhh) % p, z1 * h % p)

    def _add(self, q1: _Jac, q2: _Jac) -> _Jac:
        x1, y1, z1 = q1
        x2, y2, z2 = q2
        if z1 == 0:
            return q2
        if z2 == 0:
            return q1
        p = self.p
        z1z1 = z1 * z1 % p
        z2z2 = z2 * z2 % p
        u1 = x1 * z2z2 % p
        u2 = x2 * z1z1 % p
        s1 = y1 * z2 * z2z2 % p
        s2 = y2 * z1 * z1z1 % p
        h = (u2 - u1) % p
        r = (s2 - s1) % p
        if h == 0:
            return self._double(q1) if r == 0 else (1, 1, 0)
        hh = h * h % p
        hhh = h * hh % p
        v = u1 * hh % p
        x3 = (r * r - hhh - 2 * v) % p
        return (x3, (r * (v - x3) - s1 * hhh) % p, z1 * z2 * h % p)

    def _batch_affine(self, points: list[_Jac]) -> list[Point]:
        """Montgomery's trick: one inversion for a list of (finite) Jacobian points."""
        p = self.p
        acc = [1] * (len(points) + 1)
        for i, (_, _, z) in enumerate(points):
            acc[i + 1] = acc[i] * z % p
        inv = pow(acc[-1], -1, p)
        out: list[Point] = [(0, 0)] * len(points)
        for i in range(len(points) - 1, -1, -1):
            x, y, z = points[i]
            zi = inv * acc[i] % p
            inv = inv * z % p
            zi2 = zi * zi % p
            out[i] = (x * zi2 % p, y * zi2 * zi % p)
        return out

    # --- scalar multiplication ----------------------------------------------------------
    def precompute(self, point: Point) -> list[list[Point]]:
        """Fixed-base table for ``point``: row i holds d·16^i·point for d = 1..15 (affine).

        About 12 ms for a 256-bit curve; pays off after a handful of multiplications, so the
        generator gets one per process and public keys that verify often get their own.
        """
        windows = (self.n.bit_length() + _WINDOW - 1) // _WINDOW
        size = (1 << _WINDOW) - 1
        jac: list[_Jac] = []
        base: _Jac = (point[0], point[1], 1)
        for _ in range(windows):
            row = [base]
            for _ in range(size - 1):
                row.append(self._add(row[-1], base))
            jac.extend(row)
            base = self._add(row[-1], base)  # (2^w - 1)·base + base = 2^w·base
        flat = self._batch_affine(jac)
        return [flat[i * size:(i + 1) * size] for i in range(windows)]

    def _base_table(self) -> list[list[Point]]:
        if self._table is None:
            self._table = self.precompute(self.g)
        return self._table

    def _mul_base(self, k: int) -> _Jac:
        return self._mul_table(k, self._base_table())

    def _mul_table(self, k: int, table: list[list[Point]]) -> _Jac:
        acc: _Jac = (1, 1, 0)
        mask = (1 << _WINDOW) - 1
        add = self._add_affine
        i = 0
        while k:
            digit = k & mask
            if digit:
                x, y = table[i][digit - 1]
                acc = add(acc, x, y)
            k >>= _WINDOW
            i += 1
        return acc

    def _mul_wnaf(self, k: int, point: Point) -> _Jac:
        if k == 0:
            return (1, 1, 0)
        # Odd multiples P, 3P, ..., (2^(w-1) - 1)P, made affine with one inversion.
        base: _Jac = (point[0], point[1], 1)
        twice = self._double(base)
        odd = [base]
        for _ in range((1 << (_WNAF - 2)) - 1):
            odd.append(self._add(odd[-1], twice))
        if any(q[2] == 0 for q in odd):  # tiny-order points on toy curves: plain ladder
            return self._mul_plain(k, base)
        table = self._batch_affine(odd)
        p = self.p
        digits = []
        width, half = 1 << _WNAF, 1 << (_WNAF - 1)
        while k:
            if k & 1:
                d = k & (width - 1)
                if d >= half:
                    d -= width
                k -= d
            else:
                d = 0
            digits.append(d)
            k >>= 1
        acc: _Jac = (1, 1, 0)
        dbl, add = self._double, self._add_affine
        for d in reversed(digits):
            acc = dbl(acc)
            if d > 0:
                x, y = table[d >> 1]
                acc = add(acc, x, y)
            elif d < 0:
                x, y = table[(-d) >> 1]
                acc = add(acc, x, p - y)
        return acc

    def _mul_plain(self, k: int, base: _Jac) -> _Jac:
        acc: _Jac = (1, 1, 0)
        for bit in bin(k)[2:]:
            acc = self._double(acc)
            if bit == "1":
                acc = self._add(acc, base)
        return acc


#: The SM2 recommended curve sm2p256v1 (GB/T 32918.5).
SM2P256V1 = Curve(
    name="sm2p256v1",
    p=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF,
    a=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC,
    b=0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93,
    n=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123,
    gx=0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    gy=0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
)
