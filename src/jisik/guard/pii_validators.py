"""Check digits and field checks behind :mod:`jisik.guard.pii`: small pure functions over digit strings.

Each takes the digits only (separators already removed) and says whether the published algorithm accepts
them. None of them looks at context; the detector combines these answers with format and context into a
score.

References:

- 주민등록번호 / 외국인등록번호: 주민등록법 시행규칙 별표 (the pre-October-2020 numbering), the check digit
  as described in https://en.wikipedia.org/wiki/Resident_registration_number
- 사업자등록번호: 국세청's check digit (weights 1,3,7,1,3,7,1,3,5 with the carry of the ninth product)
- Luhn: ISO/IEC 7812-1 Annex B
"""

from __future__ import annotations

import datetime as _dt

RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
BRN_WEIGHTS = (1, 3, 7, 1, 3, 7, 1, 3, 5)

# the 7th digit of a resident number: century of birth and whether the holder is a citizen
_CENTURY = {"1": 1900, "2": 1900, "3": 2000, "4": 2000, "5": 1900, "6": 1900, "7": 2000, "8": 2000,
            "9": 1800, "0": 1800}


def rrn_birth_date(digits: str, today: _dt.date | None = None) -> _dt.date | None:
    """The birth date a 13-digit resident (or foreigner) number encodes, or ``None`` if it is no real date.

    The century comes from the 7th digit (1, 2, 5, 6: 1900s; 3, 4, 7, 8: 2000s; 9, 0: 1800s); a date after
    ``today`` is impossible, so it is rejected too.

    >>> rrn_birth_date("9001011234567")
    datetime.date(1990, 1, 1)
    >>> rrn_birth_date("0402293000000"), rrn_birth_date("0502293000000")  # 2004 is a leap year, 2005 not
    (datetime.date(2004, 2, 29), None)
    >>> rrn_birth_date("9913013000000") is None  # month 13
    True
    """
    if len(digits) < 7 or not digits[:7].isdigit():
        return None
    century = _CENTURY[digits[6]]
    try:
        born = _dt.date(century + int(digits[0:2]), int(digits[2:4]), int(digits[4:6]))
    except ValueError:
        return None
    if born > (today or _dt.date.today()):
        return None
    return born


def rrn_check_digit(digits: str) -> int:
    """The check digit of a resident registration number from its first 12 digits.

    ``(11 - Σ dᵢ·wᵢ mod 11) mod 10`` with weights 2,3,4,5,6,7,8,9,2,3,4,5. For 900101-123456?:
    2·9+3·0+4·0+5·1+6·0+7·1+8·1+9·2+2·3+3·4+4·5+5·6 = 124, 124 mod 11 = 3, (11 − 3) mod 10 = 8.

    >>> rrn_check_digit("900101123456")
    8
    """
    total = sum(int(d) * w for d, w in zip(digits[:12], RRN_WEIGHTS, strict=True))
    return (11 - total % 11) % 10


def frn_check_digit(digits: str) -> int:
    """The check digit of a foreigner registration number (pre-October-2020): ``(13 - Σ mod 11) mod 10``.

    Same weights as :func:`rrn_check_digit`; only the constant differs.

    >>> frn_check_digit("900101523456")  # Σ = 124 + 8·(5 − 1) = 156, 156 mod 11 = 2, (13 − 2) mod 10 = 1
    1
    """
    total = sum(int(d) * w for d, w in zip(digits[:12], RRN_WEIGHTS, strict=True))
    return (13 - total % 11) % 10


def brn_check_digit(digits: str) -> int:
    """The check digit of a 사업자등록번호 from its first 9 digits.

    Σ dᵢ·wᵢ for the first 8 digits (weights 1,3,7,1,3,7,1,3), plus d₉·5 and the carry ⌊d₉·5 / 10⌋; the
    check digit is ``(10 - Σ mod 10) mod 10``. For 123-45-6789?: 1+6+21+4+15+42+7+24 = 120, 9·5 = 45 → +45+4,
    Σ = 169, (10 − 9) mod 10 = 1.

    >>> brn_check_digit("123456789")
    1
    """
    total = sum(int(d) * w for d, w in zip(digits[:8], BRN_WEIGHTS[:8], strict=True))
    last = int(digits[8]) * BRN_WEIGHTS[8]
    total += last + last // 10
    return (10 - total % 10) % 10


def brn_valid(digits: str) -> bool:
    """A 10-digit 사업자등록번호 whose check digit is right and whose tax-office code is not 000.

    >>> brn_valid("1234567891"), brn_valid("1234567890")
    (True, False)
    """
    return (len(digits) == 10 and digits.isdigit() and digits[:3] != "000"
            and brn_check_digit(digits) == int(digits[9]))


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of card numbers: double every second digit from the right.

    >>> luhn_valid("4111111111111111"), luhn_valid("4111111111111112")
    (True, False)
    """
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_brand(digits: str) -> str | None:
    """The card scheme whose IIN range and length fit ``digits``, or ``None``.

    Ranges from the schemes' published IIN tables: Visa 4 (13, 16, 19 digits), Mastercard 51–55 and
    2221–2720 (16), American Express 34/37 (15), Diners 36, 300–305, 38–39 (14–19), Discover 6011, 644–649,
    65 (16–19), JCB 3528–3589 (16–19), UnionPay 62 (16–19), Maestro 50, 56–58, 6 (12–19, only 16–19 here).
    Korean domestic-only cards (BC 9xxx) are reported as "domestic" (16 digits), and only with context.

    >>> card_brand("4111111111111111"), card_brand("378282246310005"), card_brand("1234567812345670")
    ('visa', 'amex', None)
    """
    n = len(digits)
    if not digits.isdigit() or not 13 <= n <= 19:
        return None
    p2, p3, p4, p6 = int(digits[:2]), int(digits[:3]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= p2 <= 55 or 2221 <= p4 <= 2720) and n == 16:
        return "mastercard"
    if p2 in (34, 37) and n == 15:
        return "amex"
    if (p2 == 36 or 300 <= p3 <= 305 or p2 in (38, 39)) and 14 <= n <= 19:
        return "diners"
    if (p4 == 6011 or 644 <= p3 <= 649 or p2 == 65 or 622126 <= p6 <= 622925) and 16 <= n <= 19:
        return "discover"
    if 3528 <= p4 <= 3589 and 16 <= n <= 19:
        return "jcb"
    if p2 == 62 and 16 <= n <= 19:
        return "unionpay"
    if (p2 == 50 or 56 <= p2 <= 58 or digits[0] == "6") and 16 <= n <= 19:
        return "maestro"
    if digits[0] == "9" and n == 16:
        return "domestic"
    return None


def plausible_timestamp(digits: str) -> bool:
    """Whether ``digits`` reads as a compact date or date-time (YYYYMMDD, YYYYMMDDhhmm, YYYYMMDDhhmmss) in
    1900–2099, which a bare account-like number next to 입금 or 송금 often is ("입금일시 20240115103045").

    >>> plausible_timestamp("20240115103045"), plausible_timestamp("20241315103045"), plausible_timestamp("1234")
    (True, False, False)
    """
    if len(digits) not in (8, 10, 12, 14) or not digits.isdigit() or digits[:2] not in ("19", "20"):
        return False
    try:
        _dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return False
    rest = digits[8:]
    if len(rest) >= 2 and int(rest[:2]) > 23:
        return False
    if len(rest) >= 4 and int(rest[2:4]) > 59:
        return False
    return not (len(rest) >= 6 and int(rest[4:6]) > 59)
