"""Personal data (PII) in Korean and English text: resident, foreigner and business numbers, passports, driver
licences, phone numbers, e-mail, cards, bank accounts, IP addresses, and (off by default) names and addresses.

How it works, for every text of a batch:

1. :func:`normalize_for_detection` maps full-width characters to ASCII, every dash to ``-``, every space to
   `` `` and drops zero-width characters, keeping for each character its index in the original, so offsets
   map back (``Entity.start``/``end`` are always offsets in the text the caller passed).
2. One regular expression per format finds candidates. Every pattern is linear: bounded quantifiers, a
   mandatory separator between repeated groups, and a look-behind that lets a match start only at the
   beginning of a run of digits or letters (no catastrophic backtracking; the tests time 100,000-character
   inputs). The number patterns are tried only where a number can begin (one scan finds those places), and
   only in texts that hold a run of at least nine digits. Boundaries forbid a digit or an ASCII letter on
   either side but allow Hangul, because Korean glues particles to numbers ("010-1234-5678로",
   "900101-1234567입니다"); a number joined to a code by ``-`` or ``_`` ("SKU-010-1234-5678") is part of that
   code and is not reported.
3. :mod:`jisik.guard.pii_validators` checks each candidate (date of birth, check digits, Luhn and IIN ranges)
   and nearby context words (주민등록번호, 계좌, passport …) raise or lower its score; candidates below
   ``min_score`` or on the allowlist are dropped, overlaps are resolved by score, then length.

>>> d = PiiDetector()
>>> [(e.type, e.text) for e in d.detect("연락처는 010-1234-5678로 주세요. 메일 hong@example.com")]
[('PHONE', '010-1234-5678'), ('EMAIL', 'hong@example.com')]
>>> d.detect("주문번호 2024011512345, 금액 1,234,567원, 버전 v10.0.19045")
[]
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_left
from collections.abc import Collection, Iterator, Sequence
from itertools import accumulate

from jisik.errors import ConfigError
from jisik.guard.base import ENTITY_TYPES, Entity
from jisik.guard.pii_validators import (
    brn_valid,
    card_brand,
    frn_check_digit,
    luhn_valid,
    plausible_timestamp,
    rrn_birth_date,
    rrn_check_digit,
)

__all__ = ["PiiDetector", "mask_value", "normalize_for_detection"]

# ---------------------------------------------------------------------------------------------- normalisation

_DELETE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"  # zero-width space/non-joiner/joiner, word joiner, BOM, soft hyphen
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63"
_SPACES = "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000\t"
_TABLE: dict[int, int | None] = {0xFF01 + i: 0x21 + i for i in range(0x5E)}  # full-width ASCII block
_TABLE.update({ord(c): None for c in _DELETE})
_TABLE.update({ord(c): ord("-") for c in _DASHES})
_TABLE.update({ord(c): ord(" ") for c in _SPACES})
_DELETE_RE = re.compile(f"[{_DELETE}]")
# str.translate with a dict goes through the dict for every character (slow); most texts need none of it
_SPECIAL_RE = re.compile(f"[{_DELETE}{_DASHES}{_SPACES}\uff01-\uff5e]")


def normalize_for_detection(text: str) -> tuple[str, list[int]]:
    """``text`` with full-width ASCII (０-９, Ａ-Ｚ, ＠, －) made ASCII, dashes (‐ ‑ – — −) made ``-``, unusual
    spaces (no-break, ideographic) made a space and zero-width characters removed; and, for each character of
    the result, its index in ``text``. Every change is one character to one (or to none), so the map is exact.

    >>> normalize_for_detection("０１０–１２３４")
    ('010-1234', [0, 1, 2, 3, 4, 5, 6, 7])
    >>> normalize_for_detection("01\\u200b0")
    ('010', [0, 1, 3])
    """
    if not _SPECIAL_RE.search(text):
        return text, list(range(len(text)))
    norm = text.translate(_TABLE)
    if len(norm) == len(text):
        return norm, list(range(len(text)))
    index: list[int] = []
    last = 0
    for m in _DELETE_RE.finditer(text):
        index.extend(range(last, m.start()))
        last = m.end()
    index.extend(range(last, len(text)))
    return norm, index


# ---------------------------------------------------------------------------------------------- patterns

# a number starts where no digit or ASCII letter precedes it, nor a code joined by - or _ ("SKU-010…"), nor a
# dotted number ("1.010…"); it ends where no digit or letter follows, nor "-x", "_x" or ".5". Hangul is free.
# Each pattern opens with a look-ahead for its first character: re then skips other text quickly (2× faster).
_L = r"(?<![0-9A-Za-z+])(?<![0-9A-Za-z][-_])(?<!\d\.)"
_R = r"(?![0-9A-Za-z])(?![-_][0-9A-Za-z])(?!\.\d)"
_AREA = r"(?:02|0(?:3[1-3]|4[1-4]|5[1-5]|6[1-4]))"  # Seoul 02; 031–033, 041–044, 051–055, 061–064
_SEP = r"(?:[ ]?[-.][ ]?|[ ]?)"  # "-", ".", " ", none, or " - " as some forms print it

_PHONE = re.compile(r"(?=[0-9(+])" + _L + r"""(?:
    (?P<mobile>010(?P<s1>SEP)\d{4}(?P=s1)\d{4}
             | 01[16789](?P<s2>SEP)[1-9]\d{2,3}(?P=s2)\d{4})
  | (?P<land>AREA(?P<s3>SEP)[1-9]\d{2,3}(?P=s3)\d{4}
           | \(AREA\)[ ]?[1-9]\d{2,3}SEP\d{4})
  | (?P<voip>070(?P<s4>SEP)[1-9]\d{3}(?P=s4)\d{4}
           | 050[2-8](?P<s5>SEP)\d{3,4}(?P=s5)\d{4})
  | (?P<kr_intl>\+82[-. ]?(?:\(0\)[ ]?|0)?(?:1[016789]|2|3[1-3]|4[1-4]|5[1-5]|6[1-4]|70|50[2-8])
                (?P<s6>SEP)\d{3,4}(?P=s6)\d{4})
  | (?P<nanp>\+1[-. ]?[2-9]\d{2}(?P<s7>[-. ]?)[2-9]\d{2}(?P=s7)\d{4}
           | \+1[-. ]?\([2-9]\d{2}\)[ ]?[2-9]\d{2}[-. ]\d{4}
           | (?:\([2-9]\d{2}\)[ ]?|[2-9]\d{2}(?P<s8>[-.]))[2-9]\d{2}[-.]\d{4})
  | (?P<intl>\+(?!82)[2-9]\d{0,2}(?:[-. ](?:\(0\)[-. ]?)?\d{1,4}){2,5}
           | \+(?!82)[2-9]\d{7,13})
)""".replace("SEP", _SEP).replace("AREA", _AREA) + _R, re.X)
# 15xx/16xx/18xx-xxxx (대표번호) and 080 (free call) belong to companies, never to a person: not reported.
_COMPANY_PHONE = re.compile(r"080[-. ]?\d{3,4}[-. ]?\d{4}|1[568]\d\d[-. ]?\d{4}")

_RRN = re.compile(r"(?=[0-9])" + _L + r"(\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))(?P<sep>[- ]?)(\d{7})" + _R)
_BRN = re.compile(r"(?=[0-9])" + _L + r"(\d{3})(?P<sep>[- ]?)(\d{2})(?P=sep)(\d{5})" + _R)
_PASSPORT = re.compile(r"(?=[MSRODG])(?<![0-9A-Za-z])(?<![0-9A-Za-z][-_])([MSRODG])(\d{8}|\d{3}[A-Z]\d{4})"
                       r"(?![0-9A-Za-z])")
_REGIONS = "서울|부산|경기|강원|충북|충남|전북|전남|경북|경남|제주|대구|인천|광주|대전|울산|세종"
_LICENSE = re.compile(r"(?=[0-9서부경강충전제대인광울세])" + _L
                      + r"(?:(?P<code>1[1-9]|2[0-8])(?P<s1>[- ]?)|(?<![가-힣])(?P<region>" + _REGIONS
                      + r")[ ]?)(\d{2})(?P<s2>[- ]?)(\d{6})(?P=s2)(\d{2})" + _R)
_CARD = re.compile(r"(?=[0-9])" + _L + r"""(?:
    \d{4}(?P<s1>[- ])\d{4}(?P=s1)\d{4}(?P=s1)\d{4}(?:(?P=s1)\d{3})?   # 4-4-4-4(-3)
  | \d{4}(?P<s2>[- ])\d{6}(?P=s2)\d{4,5}                             # Amex 4-6-5, Diners 4-6-4
  | \d{13,19})""" + _R, re.X)
_ACCOUNT = re.compile(r"(?=[0-9])" + _L + r"(?:\d{2,6}(?:-\d{1,8}){1,4}|\d{10,14})" + _R)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(r"(?=[0-9])(?<![0-9A-Za-z.])(?<![0-9A-Za-z][-_])" + rf"(?:{_OCTET}\.){{3}}{_OCTET}"
                   + r"(?![0-9A-Za-z])(?!\.\d)")
# IPv6 candidates (an IPv4 tail allowed, "::ffff:192.0.2.1"), validated by the standard library
_IPV6 = re.compile(r"(?=[0-9A-Fa-f:])(?<![0-9A-Za-z:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}"
                   r"(?![0-9A-Za-z:])")
# a local part may start only where none of its characters precedes: one start per run, so linear
_EMAIL = re.compile(r"(?=[A-Za-z0-9])(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
                    r"[A-Za-z0-9][A-Za-z0-9-]{0,62}"
                    r"(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}(?![A-Za-z0-9-])")
_PROVINCES = ("서울특별시|서울시|서울|부산광역시|부산시|부산|대구광역시|대구시|대구|인천광역시|인천시|인천|광주광역시|"
              "광주시|광주|대전광역시|대전시|대전|울산광역시|울산시|울산|세종특별자치시|세종시|세종|경기도|경기|"
              "강원특별자치도|강원도|강원|충청북도|충북|충청남도|충남|전북특별자치도|전라북도|전북|전라남도|전남|"
              "경상북도|경북|경상남도|경남|제주특별자치도|제주도|제주")
_ADDRESS = re.compile(r"(?=[서부대인광울세경강충전제])(?<![가-힣])(?:" + _PROVINCES + r""")
    (?:[ ][가-힣]{1,6}(?:시|군|구)){1,2}
    (?:[ ][가-힣]{1,6}(?:읍|면))?
    [ ](?:[가-힣0-9]{1,10}(?:로|길)(?:[ ]?\d{1,4}(?:번길|길))?[ ]?\d{1,5}(?:-\d{1,4})?
        |[가-힣0-9]{1,8}(?:동|리|가)[ ]?\d{1,5}(?:-\d{1,4})?(?:번지)?)
    (?:,?[ ]?\d{1,4}동)?(?:[ ]?\d{1,5}호)?
    (?:[ ]?\([가-힣0-9]{1,8}(?:동|가|리|로)(?:,[ ]?[가-힣A-Za-z0-9]{1,12})?\))?""", re.X)


def _words(*words: str) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)


_CTX = {
    "KR_RRN": _words("주민", "주민등록", "주민번호", "생년월일", "resident registration", "rrn", "ssn"),
    "KR_FRN": _words("외국인", "외국인등록", "등록번호", "alien registration", "foreigner", "frn", "arc"),
    "KR_BRN": _words("사업자", "등록번호", "법인", "business registration", "business number", "brn", "tax id"),
    "KR_PASSPORT": _words("여권", "passport"),
    "KR_DRIVER_LICENSE": _words("면허", "운전", "driver", "licence", "license"),
    "PHONE": _words("전화", "연락", "휴대", "핸드폰", "폰", "번호", "tel", "phone", "mobile", "cell", "call", "fax",
                    "팩스", "☎"),
    "CREDIT_CARD": _words("카드", "결제", "card", "visa", "master", "amex", "신용", "체크"),
    "BANK_ACCOUNT": _words("계좌", "통장", "입금", "송금", "이체", "환불", "예금주", "은행", "뱅크", "국민", "신한",
                           "우리", "하나", "농협", "기업", "카카오", "토스", "케이뱅크", "새마을", "우체국", "수협",
                           "신협", "씨티", "SC제일", "KB", "NH", "IBK", "account", "acct", "bank", "deposit",
                           "wire", "transfer", "a/c"),
}
# words that make a number something other than a bank account / passport when they are nearer than the
# positive context: "입금 확인, 주문번호 2024011512345" is an order number
_NOT_ACCOUNT = _words("주문", "송장", "운송장", "택배", "접수", "예약", "사업자", "고객번호", "회원번호", "카드",
                      "전화", "연락처", "승인", "거래번호", "참조", "바코드", "invoice", "order", "tracking", "ticket",
                      "ref", "card", "phone", "tel", "transaction", "reference", "case", "serial", "barcode", "ean",
                      "isbn", "upc", "unix", "epoch", "timestamp", "brn", "sku")
# words that make a bare 13-digit number an order or item number rather than a resident number
_NOT_ID = _words("주문", "송장", "운송장", "택배", "접수", "예약", "바코드", "거래번호", "승인", "invoice", "order",
                 "tracking", "ticket", "barcode", "ean", "isbn", "upc", "sku", "serial", "transaction")
_NOT_PASSPORT = _words("모델", "model", "제품", "품번", "sku", "part", "주문", "order", "serial", "시리얼", "상품")
_AMOUNT_UNIT = re.compile(r"[ ]?(?:원|달러|만|억|won\b|krw\b|usd\b|dollars?\b)", re.IGNORECASE)
# dotted numbers that are versions or section numbers, not IPv4 addresses ("version 1.2.3.4", "섹션 4.1.2.3")
_VERSION = re.compile(r"\b(?:version|ver|v|release|build|firmware|rev|section|sec|chapter|clause|figure|table)\b"
                      r"|버전|빌드|펌웨어|섹션|단원|챕터|§", re.IGNORECASE)
_IP_CONTEXT = _words("ip", "아이피", "접속", "서버", "server", "host", "dns", "ping", "address", "주소", "from",
                     "gateway",
                     "게이트웨이", "proxy", "프록시", "client", "로그인", "login")

_HANGUL = re.compile("[가-힣]")
_DIGIT = re.compile("[0-9]")
# where a number may begin (the _L boundary): every digit-pattern match starts at one of these
_NUMBER_START = re.compile(r"(?=[0-9(+])" + _L)
_REGION_SET = frozenset(_REGIONS.split("|"))
# every number type but passports and IPv4 has at least 9 digits in one run: texts without such a run skip
# their scans (dates, amounts and times are shorter), which halves the time on ordinary prose
_LONG_NUMBER = re.compile(r"[0-9](?:[-. ()]{0,3}[0-9]){8}")
_RRN_SHAPE = re.compile(r"\d{6}-\d{7}")
_SURNAMES_2 = frozenset(["남궁", "황보", "제갈", "선우", "독고", "사공", "서문", "동방", "어금", "망절"])
_SURNAMES = frozenset(["김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한", "오", "서", "신", "권", "황",
                       "안", "송", "류", "유", "전", "홍", "고", "문", "양", "손", "배", "백", "허", "남", "심", "노",
                       "하", "곽", "성", "차", "주", "우", "구", "민", "진", "나", "지", "엄", "채", "원", "천", "방",
                       "공", "현", "함", "변", "염", "여", "추", "도", "소", "석", "선", "설", "마", "길", "연", "위",
                       "표", "명", "기", "반", "왕", "금", "옥", "육", "인", "맹", "제", "모", "탁", "국", "어", "은",
                       "편", "용", "예", "경", "봉", "사", "부", "가", "복", "태", "목", "형", "피", "두", "감", "음",
                       "빈", "동", "온", "호", "범", "좌", "팽", "승", "간", "상", "시", "갈", "단", "견", "당", "화",
                       "창", "옹", "순"])
_TITLES = ("씨", "님", "고객", "회원", "과장", "대리", "부장", "차장", "팀장", "실장", "사원", "주임", "선생", "교수",
           "원장", "대표", "이사", "기사", "환자", "학생", "매니저", "책임", "선임", "수석", "팀원", "사장", "변호사")
# a label right before a name ("성명: 홍길동", "예금주 김철수", "참석자 이영희, 박민수")
_NAME_LABEL = re.compile(r"(?:성명|이름|고객명|고객|담당자|담당|예금주|신청인|신청자|수신인|수신자|"
                         r"수령인|수취인|받는[ ]?분|보내는[ ]?분|작성자|환자명|환자|보호자|대표이사|"
                         r"대표자|대표|성함|직원|참석자|참가자|소지자|문의자|상담자|발신인|발신자|"
                         r"계약자|가입자|피보험자|임차인|임대인|name)(?:[ ]*[:：][ ]*|[ ]+)(?=[가-힣])",
                         re.IGNORECASE)
_NAME_TITLE = re.compile(r"(?<![가-힣])(?P<name>[가-힣]{2,4}?)[ ]?(?:" + "|".join(_TITLES) + ")")
_NAME_LIST = re.compile(r"[ ]*[,、·/][ ]*|[ ]+(?:및|와|과|and)[ ]+")
_HANGUL_RUN = re.compile("[가-힣]+")
_COMMON_NOUNS = frozenset(["고객", "회원", "선생", "사장", "부장", "과장", "대리", "기사", "환자", "학생", "직원",
                           "여러분", "사용자", "관리자", "담당자", "신청자", "주문자", "보호자", "교수", "원장", "대표",
                           "이사", "팀장", "실장", "소장", "상담원", "고객님", "본인", "가족", "부모", "남편", "아내",
                           "사번", "마케팅", "운영자", "작성자", "판매자", "구매자", "수령인", "대표자", "책임자",
                           "관계자", "연구원", "전문가", "기술자", "영업팀", "인사팀", "개발팀", "총무팀", "관리팀",
                           "기획팀", "지원팀", "고객센터", "선생님", "담당", "안내", "문의", "전화", "연락", "상담",
                           "확인", "주문", "배송", "결제"])

# an entity candidate in normalised coordinates: start, end, type, score, reason
_Cand = tuple[int, int, str, float, str]
_DEFAULT_TYPES = tuple(t for t in ENTITY_TYPES if t not in ("PERSON", "ADDRESS"))


def _scan(pattern: re.Pattern[str], norm: str, starts: Sequence[int]) -> Iterator[re.Match[str]]:
    """``pattern.finditer(norm)`` for a pattern whose matches can only begin at one of ``starts`` (sorted): a
    match is tried only there, and, as finditer does, not again inside the previous match. Ten full scans of a
    short text cost more than one scan for the starts and a few anchored matches."""
    resume = 0
    for pos in starts:
        if pos < resume:
            continue
        m = pattern.match(norm, pos)
        if m is not None:
            yield m
            resume = m.end()


def _near(norm: str, start: int, end: int, pattern: re.Pattern[str], before: int = 40, after: int = 12) -> bool:
    """Whether ``pattern`` occurs within ``before`` characters before or ``after`` characters after a span."""
    return bool(pattern.search(norm, max(0, start - before), start)
                or pattern.search(norm, end, min(len(norm), end + after)))


def _last_hit(norm: str, start: int, pattern: re.Pattern[str], before: int = 40) -> int:
    """End of the last ``pattern`` hit in the ``before`` characters before ``start``, or -1."""
    last = -1
    for m in pattern.finditer(norm, max(0, start - before), start):
        last = m.end()
    return last


def _spaced_in_run(norm: str, start: int, end: int) -> bool:
    """A space-separated number that sits in a longer run of space-separated numbers (a table row of
    figures, "2021 02 1234 5678 90"), which is no phone or card number."""
    if " " not in norm[start:end]:
        return False
    before = norm[max(0, start - 2):start]
    after = norm[end:end + 2]
    return (len(before) == 2 and before[0].isdigit() and before[1] == " ") or \
        (len(after) == 2 and after[0] == " " and after[1].isdigit())


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


def _value_key(value: str) -> str:
    """What the allowlist compares: digits only for numbers (with +82 read as a leading 0), the lower-cased
    text for e-mail and IPv6 addresses, else the case-folded text.

    >>> _value_key("+82 2-1588-0000") == _value_key("02 1588 0000"), _value_key("Help@Example.com")
    (True, 'help@example.com')
    """
    s = normalize_for_detection(value)[0].strip()
    if "@" in s or (":" in s and re.fullmatch(r"[0-9A-Fa-f:.]+", s)):
        return s.lower()
    digits = _digits(s)
    if len(digits) >= 6:
        if s.startswith("+82"):
            digits = digits[2:] if digits[2:3] == "0" else "0" + digits[2:]
        return "#" + digits
    return s.casefold()


class PiiDetector:
    """Finds personal data; see the module docstring for how. ``detect_batch`` is the main path.

    ``types`` restricts the structured types reported (default: all but PERSON and ADDRESS); ``names`` adds
    PERSON (Kiwi proper nouns next to 씨/님/고객/성명 …) and ``addresses`` adds ADDRESS (Korean road and lot
    addresses), both lower confidence and off by default. ``allowlist`` values (a company's public number)
    are never reported; they are compared after normalisation, so "02-1234-5678" also allows "02 1234 5678".

    >>> PiiDetector(types=["EMAIL"]).detect("010-1234-5678, a.b@example.org")[0].type
    'EMAIL'
    >>> PiiDetector(allowlist=["02-1234-5678"]).detect("대표번호 02 1234 5678")
    []
    """

    def __init__(self, *, types: Collection[str] | None = None, names: bool = False, addresses: bool = False,
                 allowlist: Collection[str] = (), min_score: float = 0.5) -> None:
        unknown = sorted(set(types or ()) - set(ENTITY_TYPES))
        if unknown:
            raise ConfigError(f"Unknown PII entity type(s): {', '.join(unknown)}",
                              hint=f"choose from {', '.join(ENTITY_TYPES)}")
        if not 0.0 <= min_score <= 1.0:
            raise ConfigError(f"min_score must be in [0, 1], got {min_score}")
        enabled = set(types) if types is not None else set(_DEFAULT_TYPES)
        if names:
            enabled.add("PERSON")
        if addresses:
            enabled.add("ADDRESS")
        self.types = frozenset(enabled)
        self.min_score = min_score
        self._allow = frozenset(_value_key(v) for v in allowlist if v.strip())

    def detect(self, text: str) -> list[Entity]:
        """Entities in ``text`` (offsets in ``text``), sorted by start, non-overlapping.

        >>> [(e.type, e.start, e.end) for e in PiiDetector().detect("주민번호 ９００１０１－１２３４５６８입니다")]
        [('KR_RRN', 5, 19)]
        """
        return self.detect_batch([text])[0]

    def detect_batch(self, texts: Sequence[str]) -> list[list[Entity]]:
        """:meth:`detect` for every text; names (when enabled) go through Kiwi in one batch call."""
        normed = [normalize_for_detection(t) for t in texts]
        people = self._persons([n for n, _ in normed]) if "PERSON" in self.types else None
        out: list[list[Entity]] = []
        for i, (text, (norm, index)) in enumerate(zip(texts, normed, strict=True)):
            cands = list(self._candidates(norm))
            if people is not None:
                cands.extend(people[i])
            out.append(self._resolve(text, norm, index, cands))
        return out

    # ------------------------------------------------------------------------------------------ candidates

    def _candidates(self, norm: str) -> Iterator[_Cand]:
        t = self.types
        if "EMAIL" in t and "@" in norm:
            yield from _emails(norm)
        if not _DIGIT.search(norm):
            return
        if "KR_PASSPORT" in t:
            yield from _passports(norm)
        if "IP_ADDRESS" in t:
            yield from _ips(norm)
        if "ADDRESS" in t:
            yield from _addresses(norm)
        if not _LONG_NUMBER.search(norm):
            return
        starts = [m.start() for m in _NUMBER_START.finditer(norm)]
        if "PHONE" in t:
            yield from _phones(norm, starts)
        if t & {"KR_RRN", "KR_FRN"}:
            yield from (c for c in _resident_numbers(norm, starts) if c[2] in t)
        if "KR_BRN" in t:
            yield from _business_numbers(norm, starts)
        if "KR_DRIVER_LICENSE" in t:
            yield from _licenses(norm, starts)
        if "CREDIT_CARD" in t:
            yield from _cards(norm, starts)
        if "BANK_ACCOUNT" in t:
            yield from _accounts(norm, starts)

    def _persons(self, norms: list[str]) -> list[list[_Cand]]:
        """PERSON candidates for every text; Kiwi runs (one batch) only over the texts that have some."""
        spans = [_name_spans(n) if _HANGUL.search(n) else [] for n in norms]
        todo = [i for i, sp in enumerate(spans) if sp]
        found: list[list[_Cand]] = [[] for _ in norms]
        if not todo:
            return found
        from jisik.text._kiwi import get_kiwi

        for i, tokens in zip(todo, get_kiwi().tokenize([norms[i] for i in todo]), strict=True):
            proper = {t.start for t in tokens if t.tag == "NNP"}
            for start, end, how in spans[i]:
                if start in proper:
                    found[i].append((start, end, "PERSON", 0.7, f"proper noun, {how}"))
                elif end - start >= 3 and how != "list":  # Kiwi reads some names as common nouns ("최수정")
                    found[i].append((start, end, "PERSON", 0.6, f"surname + given name, {how}"))
        return found

    def _resolve(self, text: str, norm: str, index: list[int], cands: list[_Cand]) -> list[Entity]:
        if not cands:
            return []
        kept = [c for c in cands if c[3] >= self.min_score
                and not (self._allow and _value_key(norm[c[0]:c[1]]) in self._allow)]
        accounts = [c for c in kept if c[2] == "BANK_ACCOUNT"]
        if accounts:  # an account has no check digit: any validated reading of the same digits wins
            others = sorted(c for c in kept if c[2] != "BANK_ACCOUNT")
            starts = [o[0] for o in others]
            reach = list(accumulate((o[1] for o in others), max))  # furthest end among the first i others
            kept = others + [c for c in accounts
                             if not ((i := bisect_left(starts, c[1])) and reach[i - 1] > c[0])]
        kept.sort(key=lambda c: (-c[3], -(c[1] - c[0]), c[0]))
        chosen: list[_Cand] = []  # disjoint, sorted by start: a new span only needs checking against two
        chosen_starts: list[int] = []
        for c in kept:
            i = bisect_left(chosen_starts, c[0])
            if (i == 0 or chosen[i - 1][1] <= c[0]) and (i == len(chosen) or c[1] <= chosen[i][0]):
                chosen.insert(i, c)
                chosen_starts.insert(i, c[0])
        entities = []
        for s, e, typ, score, reason in chosen:
            start, end = index[s], index[e - 1] + 1
            entities.append(Entity(typ, start, end, text[start:end], round(score, 3), reason))
        return entities


# ---------------------------------------------------------------------------------------------- per type


def _emails(norm: str) -> Iterator[_Cand]:
    for m in _EMAIL.finditer(norm):
        local = m.group().split("@", 1)[0]
        if ".." in m.group() or local.endswith("."):
            continue
        yield m.start(), m.end(), "EMAIL", 0.95, "e-mail address"


def _phones(norm: str, starts: Sequence[int]) -> Iterator[_Cand]:
    for m in _scan(_PHONE, norm, starts):
        s, e = m.span()
        if _spaced_in_run(norm, s, e):
            continue
        kind = m.lastgroup or ""
        ctx = _near(norm, s, e, _CTX["PHONE"])
        bare = not any(c in "-. ()" for c in m.group()[1:])
        if kind == "mobile":
            score = 0.85 if bare else 0.92
        elif kind == "land":
            score = (0.85 if ctx else 0.55) if bare else 0.88
        elif kind == "voip":
            score = (0.8 if ctx else 0.55) if bare else 0.88
        elif kind == "kr_intl":
            score = 0.92
        elif kind == "nanp":
            score = 0.85 if ctx or m.group().startswith("+") else 0.7
        else:
            n = len(_digits(m.group()))
            if not 9 <= n <= 15:
                continue
            score = 0.85 if ctx else 0.72
        if ctx:
            score = min(0.97, score + 0.05)
        yield s, e, "PHONE", score, f"{kind} number" + (", context" if ctx else "")


def _resident_numbers(norm: str, starts: Sequence[int]) -> Iterator[_Cand]:
    for m in _scan(_RRN, norm, starts):
        s, e = m.span()
        if _spaced_in_run(norm, s, e):
            continue
        digits = m.group(1) + m.group(3)
        if rrn_birth_date(digits) is None:
            continue
        gender = digits[6]
        typ = "KR_FRN" if gender in "5678" else "KR_RRN"
        check = frn_check_digit(digits) if typ == "KR_FRN" else rrn_check_digit(digits)
        ok = check == int(digits[12])
        canonical = m.group("sep") == "-"
        ctx = _near(norm, s, e, _CTX[typ]) or _near(norm, s, e, _CTX["KR_RRN" if typ == "KR_FRN" else "KR_FRN"])
        # random trailing digits since October 2020: a failed check only lowers the score
        score = {(True, True): 0.95, (True, False): 0.85, (False, True): 0.7, (False, False): 0.4}[(ok, canonical)]
        if ctx:
            score = min(0.98, score + (0.3 if not ok else 0.05))
        if gender in "90":  # born in the 1800s: format valid, holder very unlikely
            if not (canonical or ctx):
                continue
            score -= 0.15
        if not canonical and _last_hit(norm, s, _NOT_ID, 25) > _last_hit(norm, s, _CTX[typ], 25):
            continue  # "order #2010110998782": a bare number next to an order or invoice word
        reason = ("mod-11 check digit ok" if ok else "date and gender digit ok, check digit not (post-2020?)")
        yield s, e, typ, score, reason + (", context" if ctx else "")


def _business_numbers(norm: str, starts: Sequence[int]) -> Iterator[_Cand]:
    for m in _scan(_BRN, norm, starts):
        s, e = m.span()
        digits = m.group(1) + m.group(3) + m.group(4)
        if not brn_valid(digits) or _spaced_in_run(norm, s, e):
            continue
        ctx = _near(norm, s, e, _CTX["KR_BRN"])
        if m.group("sep") != "-" and not ctx:
            continue  # ten bare digits pass the check one time in ten: only with context
        yield s, e, "KR_BRN", 0.95 if ctx else 0.9, "check digit ok" + (", context" if ctx else "")


def _passports(norm: str) -> Iterator[_Cand]:
    for m in _PASSPORT.finditer(norm):
        s, e = m.span()
        if _near(norm, s, e, _NOT_PASSPORT, 25, 0) and not _near(norm, s, e, _CTX["KR_PASSPORT"], 25, 0):
            continue
        ctx = _near(norm, s, e, _CTX["KR_PASSPORT"])
        new = not m.group(2).isdigit()
        score = (0.95 if ctx else 0.75) if new else (0.9 if ctx else 0.55)
        yield s, e, "KR_PASSPORT", score, ("letter+3+letter+4" if new else "letter+8 digits") + (
            ", context" if ctx else "")


def _licenses(norm: str, starts: Sequence[int]) -> Iterator[_Cand]:
    # the "서울 12-345678-90" form starts at the region name, two or three characters before the digits
    regions = [q for p in starts for q in (p - 3, p - 2) if q >= 0 and norm[q:q + 2] in _REGION_SET]
    for m in _scan(_LICENSE, norm, sorted(set(starts).union(regions))):
        s, e = m.span()
        if _spaced_in_run(norm, s, e):
            continue
        ctx = _near(norm, s, e, _CTX["KR_DRIVER_LICENSE"])
        separated = m.group("s2") == "-" and (m.group("region") is not None or m.group("s1") == "-")
        if not separated and not ctx:
            continue  # twelve bare digits are too common (order numbers) to report without context
        score = (0.95 if ctx else 0.85) if separated else 0.85
        yield s, e, "KR_DRIVER_LICENSE", score, "region code" + (", context" if ctx else "")


def _cards(norm: str, starts: Sequence[int]) -> Iterator[_Cand]:
    for m in _scan(_CARD, norm, starts):
        s, e = m.span()
        digits = _digits(m.group())
        if not luhn_valid(digits) or _spaced_in_run(norm, s, e):
            continue
        brand = card_brand(digits)
        ctx = _near(norm, s, e, _CTX["CREDIT_CARD"])
        if brand is None or (brand == "domestic" and not ctx):
            continue
        separated = len(digits) != e - s
        score = 0.95 if separated else (0.9 if ctx else 0.8)
        yield s, e, "CREDIT_CARD", score, f"Luhn ok, {brand}" + (", context" if ctx else "")


def _accounts(norm: str, starts: Sequence[int]) -> Iterator[_Cand]:
    if not _CTX["BANK_ACCOUNT"].search(norm):
        return  # no account without context: skip the scan
    for m in _scan(_ACCOUNT, norm, starts):
        s, e = m.span()
        value = m.group()
        n = len(value) - value.count("-")
        if not 10 <= n <= 14 or (n == e - s and plausible_timestamp(value)):
            continue
        if _AMOUNT_UNIT.match(norm, e):  # "3500000000원을 송금": an amount, not an account
            continue
        if _COMPANY_PHONE.fullmatch(value) or _RRN_SHAPE.fullmatch(value):
            continue  # a company phone number (080-…, 1588-…) or a resident-number layout no bank uses
        if not _CTX["BANK_ACCOUNT"].search(norm, e, min(len(norm), e + 12)):
            pos = _last_hit(norm, s, _CTX["BANK_ACCOUNT"])
            if pos < 0 or _last_hit(norm, s, _NOT_ACCOUNT) > pos:
                continue
        yield s, e, "BANK_ACCOUNT", 0.8, "10–14 digits, context"


def _ips(norm: str) -> Iterator[_Cand]:
    if "." in norm:
        for m in _IPV4.finditer(norm):
            s, e = m.span()
            if m.group().startswith("0") or _near(norm, s, e, _VERSION, 15, 0):
                continue
            if e - s == 7 and not _near(norm, s, e, _IP_CONTEXT, 25, 0):
                continue  # four one-digit parts ("5.8.2.6") read as a section or version number without IP context
            yield s, e, "IP_ADDRESS", 0.85, "IPv4"
    if "::" in norm or norm.count(":") >= 7:
        for m in _IPV6.finditer(norm):
            value = m.group()
            if sum(1 for g in value.split(":") if g) < 2:
                continue
            try:
                ipaddress.IPv6Address(value)
            except ValueError:
                continue
            yield m.start(), m.end(), "IP_ADDRESS", 0.85, "IPv6"


def _addresses(norm: str) -> Iterator[_Cand]:
    for m in _ADDRESS.finditer(norm):
        yield m.start(), m.end(), "ADDRESS", 0.65, "province + city/district + road or lot number"


def _name_at(norm: str, pos: int, *, full_only: bool = False) -> int | None:
    """End of a Korean name starting at ``pos`` (a surname, then one or two syllables), or ``None``.

    A run longer than a name keeps its particle off: "차가은으로" → "차가은"; compound surnames (남궁, 황보 …)
    take four syllables. ``full_only`` accepts only a run that is exactly one name (items of a list).

    >>> _name_at("예금주 차가은으로", 4), _name_at("남궁민수씨", 0), _name_at("상담 내역", 0)
    (7, 4, None)
    """
    run = _HANGUL_RUN.match(norm, pos)
    if run is None:
        return None
    word = run.group()
    if word[:2] in _SURNAMES_2 and len(word) >= 4:
        size = 4
    elif word[0] in _SURNAMES and len(word) >= 2:
        size = 3 if len(word) >= 3 else 2
    else:
        return None
    if full_only and len(word) != size:
        return None
    return None if word[:size] in _COMMON_NOUNS else pos + size


def _name_spans(norm: str) -> list[tuple[int, int, str]]:
    """Candidate names with how they were found: after a label ("성명: …", "참석자 …, …") or before a title
    ("… 고객님", "…씨"). Two-syllable ones are kept only if Kiwi tags them as proper nouns (see ``_persons``)."""
    spans: dict[int, tuple[int, int, str]] = {}
    for m in _NAME_LABEL.finditer(norm):
        pos, full_only = m.end(), False
        for _ in range(8):
            end = _name_at(norm, pos, full_only=full_only)
            if end is None:
                break
            spans.setdefault(pos, (pos, end, "list" if full_only else "label"))
            more = _NAME_LIST.match(norm, end)
            if more is None:
                break
            pos, full_only = more.end(), True
    for m in _NAME_TITLE.finditer(norm):
        name = m.group("name")
        compound = name[:2] in _SURNAMES_2
        if name in _COMMON_NOUNS or not (compound or name[0] in _SURNAMES) or len(name) > (4 if compound else 3):
            continue
        spans.setdefault(m.start(), (m.start(), m.start() + len(name), "title"))
    return sorted(spans.values())


# ---------------------------------------------------------------------------------------------- masking


def _mask_chars(value: str, keep: set[int]) -> str:
    """Every letter or digit of ``value`` becomes ``*`` unless its index is in ``keep``; separators stay."""
    return "".join(c if i in keep or not c.isalnum() else "*" for i, c in enumerate(value))


def _alnum_positions(value: str) -> list[int]:
    return [i for i, c in enumerate(value) if c.isalnum()]


def mask_value(entity_type: str, value: str) -> str:
    """``value`` with its identifying part replaced by ``*``, separators and length kept, so a reader still
    sees what kind of value was there.

    >>> mask_value("PHONE", "010-1234-5678"), mask_value("PHONE", "01012345678")
    ('010-****-5678', '010****5678')
    >>> mask_value("PHONE", "+82 10-1234-5678")
    '+82 10-****-5678'
    >>> mask_value("EMAIL", "hong@example.com")
    'h***@example.com'
    >>> mask_value("KR_RRN", "900101-1234567"), mask_value("KR_BRN", "123-45-67891")
    ('900101-1******', '123-45-*****')
    >>> mask_value("CREDIT_CARD", "4111-1111-1111-1234"), mask_value("BANK_ACCOUNT", "110-123-456789")
    ('****-****-****-1234', '***-***-**6789')
    >>> mask_value("KR_DRIVER_LICENSE", "서울 12-345678-90"), mask_value("KR_PASSPORT", "M123A4567")
    ('서울 12-******-**', 'M********')
    >>> mask_value("IP_ADDRESS", "192.168.10.24"), mask_value("PERSON", "홍길동"), mask_value("PERSON", "John Smith")
    ('192.168.**.**', '홍*동', 'J*** S****')
    >>> mask_value("ADDRESS", "서울특별시 강남구 테헤란로 123")
    '서울특별시 강남구 **** ***'
    """
    pos = _alnum_positions(value)
    if not pos:
        return value
    if entity_type == "EMAIL" and "@" in value:
        local, domain = value.split("@", 1)
        return (local[:1] + "*" * max(3, len(local) - 1) if local else "") + "@" + domain
    if entity_type == "PHONE":
        groups = re.findall(r"\d+", value)
        if len(groups) >= 3:
            first = 2 if value.lstrip().startswith("+") else 1  # keep +82 and 10, or 010
            spans = [m.span() for m in re.finditer(r"\d+", value)]
            keep = {i for a, b in spans[:first] + spans[-1:] for i in range(a, b)}
            return _mask_chars(value, keep)
        digits = [i for i in pos if value[i].isdigit()]
        return _mask_chars(value, set(digits[:3] + digits[-4:]))
    if entity_type in ("KR_RRN", "KR_FRN"):
        return _mask_chars(value, set(pos[:7]))
    if entity_type == "KR_BRN":
        return _mask_chars(value, set(pos[:5]))
    if entity_type in ("CREDIT_CARD", "BANK_ACCOUNT"):
        return _mask_chars(value, set(pos[-4:]))
    if entity_type == "KR_DRIVER_LICENSE":
        head = 2 if value[:1].isdigit() else 0  # 11-12-…: region and year; 서울 12-…: the year
        digits = [i for i in pos if value[i].isdigit()]
        keep = {i for i, c in enumerate(value) if not c.isdigit()} | set(digits[:head + 2])
        return _mask_chars(value, keep)
    if entity_type == "IP_ADDRESS":
        if "." in value and ":" not in value:
            parts = value.split(".")
            return ".".join(parts[:2] + ["*" * len(p) for p in parts[2:]])
        groups = value.split(":")
        return ":".join(groups[:2] + ["*" * len(g) for g in groups[2:]])
    if entity_type == "PERSON":
        if _HANGUL.search(value):
            return value[0] + "*" * (len(value) - 2) + value[-1] if len(value) > 2 else value[0] + "*"
        return " ".join(w[:1] + "*" * (len(w) - 1) for w in value.split(" "))
    if entity_type == "ADDRESS":
        words = value.split(" ")
        return " ".join(words[:2] + ["*" * len(w) for w in words[2:]])
    if entity_type == "KR_PASSPORT":
        return _mask_chars(value, set(pos[:1]))
    return _mask_chars(value, set(pos[-2:]))
