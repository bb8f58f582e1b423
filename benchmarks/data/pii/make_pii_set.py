"""Generate the labelled PII set: Korean and English snippets with fake but valid-looking personal data.

    python benchmarks/data/pii/make_pii_set.py            # writes pii_ko.jsonl and pii_en.jsonl beside this file

Every value is made up (random digits with valid check digits computed here from the published algorithms,
example domains, invented names), so the set holds no real person's data. Rows are
``{"text", "entities": [{"type", "start", "end"}], "lang"}``; offsets are in ``text`` (Python str indices).

Written from the formats people use, not from the detector's patterns: values come in many layouts (hyphens,
spaces, dots, none, full-width digits, en dashes, zero-width characters, +82, parentheses, particles glued),
in customer-service chats, forms, HR records, invoices and server logs, and a large share of the rows are hard
negatives that only look like personal data (dates, timestamps, order and invoice numbers, amounts, versions,
product codes, numbers with a wrong check digit, tables of figures, ISBNs, barcodes, postcodes, masked values).

Labelling policy (decided before measuring): company numbers (15xx/16xx/18xx-xxxx 대표번호, 080 free-call) are not
personal data and are not labelled; a number joined to a product code by a hyphen ("SKU-010-1234-5678") is part
of the code; a span covers the value as written (a driver licence's region name, a phone's "+82" or "(02)").
PERSON and ADDRESS are labelled only in Korean rows (the detector's optional types).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from collections.abc import Callable
from pathlib import Path

SEED = 20261124
N_PER_LANG = 1000
HERE = Path(__file__).resolve().parent

RRN_W = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
FULL = str.maketrans("0123456789-", "０１２３４５６７８９－")


# ------------------------------------------------------------------------------------------ check digits
# computed independently of jisik (the benchmark must not share code with what it measures)

def _rrn_sum(d: str) -> int:
    return sum(int(a) * w for a, w in zip(d[:12], RRN_W, strict=True))


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(body + "0")):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n * 2 > 9 else n * 2
        total += n
    return body + str((10 - total % 10) % 10)


def _brn_check(d9: str) -> int:
    w = (1, 3, 7, 1, 3, 7, 1, 3, 5)
    s = sum(int(a) * b for a, b in zip(d9[:8], w[:8], strict=True))
    last = int(d9[8]) * 5
    s += last + last // 10
    return (10 - s % 10) % 10


class Gen:
    """Fake values, each in one of the layouts people write it in."""

    def __init__(self, rng: random.Random) -> None:
        self.r = rng

    def digits(self, n: int, first: str = "0123456789") -> str:
        return self.r.choice(first) + "".join(self.r.choice("0123456789") for _ in range(n - 1))

    def _style(self, s: str, *, allow_space: bool = True) -> str:
        """Rewrite separators and digits the way real documents do, now and then."""
        x = self.r.random()
        if x < 0.08:
            return s.translate(FULL)
        if x < 0.12:
            return s.replace("-", self.r.choice(["–", "—", "‐", "−"]))
        if x < 0.15 and "-" in s:  # a zero-width space pasted in from a web page
            i = s.index("-")
            return s[:i] + "\u200b" + s[i:]
        if allow_space and x < 0.18:
            return s.replace("-", " ")
        return s

    def birth(self, lo: int = 1940, hi: int = 2015) -> dt.date:
        start = dt.date(lo, 1, 1).toordinal()
        return dt.date.fromordinal(self.r.randint(start, dt.date(hi, 12, 31).toordinal()))

    def resident(self, foreign: bool = False, bare_ok: bool = False) -> str:
        b = self.birth()
        g = ("5" if b.year < 2000 else "7") if foreign else ("1" if b.year < 2000 else "3")
        g = str(int(g) + self.r.randint(0, 1))
        d12 = b.strftime("%y%m%d") + g + self.digits(5)
        if self.r.random() < 0.7:  # issued before October 2020: check digit
            check = (13 if foreign else 11) - _rrn_sum(d12) % 11
            d13 = d12 + str(check % 10)
        else:  # since October 2020: random trailing digits
            d13 = d12 + self.digits(1)
        if bare_ok and self.r.random() < 0.25:
            return self._style(d13)
        return self._style(d13[:6] + "-" + d13[6:], allow_space=bare_ok)

    def brn(self, bare_ok: bool = False) -> str:
        kind = ["01", "05", "81", "86", "87", "88", "12", "23"]  # individual / corporate business codes
        d9 = self.digits(3, "123456789") + self.r.choice(kind) + self.digits(4)
        d = d9 + str(_brn_check(d9))
        if bare_ok and self.r.random() < 0.25:
            return d
        return self._style(f"{d[:3]}-{d[3:5]}-{d[5:]}", allow_space=False)

    def passport(self) -> str:
        letter = self.r.choice("MMMMMSRODG")
        if self.r.random() < 0.5:
            return letter + self.digits(8)
        return letter + self.digits(3) + self.r.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + self.digits(4)

    def license(self, bare_ok: bool = False) -> str:
        year, serial, tail = self.digits(2), self.digits(6), self.digits(2)
        x = self.r.random()
        if x < 0.35:
            region = self.r.choice(["서울", "부산", "경기", "강원", "충북", "충남", "전북", "전남", "경북", "경남",
                                    "제주", "대구", "인천", "광주", "대전", "울산"])
            return f"{region}{self.r.choice([' ', ' ', ''])}{year}-{serial}-{tail}"
        code = str(self.r.choice([*range(11, 27), 28]))
        if bare_ok and x > 0.85:
            return code + year + serial + tail
        return self._style(f"{code}-{year}-{serial}-{tail}", allow_space=False)

    def phone(self, lang: str = "ko") -> str:
        x = self.r.random()
        sep = self.r.choice(["-", "-", "-", "-", " ", ".", ""])
        if x < 0.45:
            mid = self.digits(4, "23456789") if self.r.random() < 0.9 else self.digits(4)
            s = f"010{sep}{mid}{sep}{self.digits(4)}"
        elif x < 0.52:
            p = self.r.choice(["011", "016", "017", "018", "019"])
            s = f"{p}{sep}{self.digits(self.r.choice([3, 4]), '23456789')}{sep}{self.digits(4)}"
        elif x < 0.70:
            area = self.r.choice(["02", "02", "031", "032", "033", "041", "042", "043", "044", "051", "052", "053",
                                  "054", "055", "061", "062", "063", "064"])
            mid = self.digits(self.r.choice([3, 4]), "23456789")
            if self.r.random() < 0.15:
                s = f"({area}) {mid}-{self.digits(4)}"
            else:
                s = f"{area}{sep or '-'}{mid}{sep or '-'}{self.digits(4)}"
        elif x < 0.78:
            if self.r.random() < 0.7:
                s = f"070{sep or '-'}{self.digits(4, '23456789')}{sep or '-'}{self.digits(4)}"
            else:
                s = f"050{self.r.choice('2345678')}-{self.digits(4)}-{self.digits(4)}"
        elif x < 0.90:
            body = self.r.choice(["10", "10", "2", "31", "51"])
            mid = self.digits(4 if body == "10" else 3, "23456789")
            form = self.r.choice(["+82 {b}-{m}-{l}", "+82-{b}-{m}-{l}", "+82 {b} {m} {l}", "+82{b}{m}{l}",
                                  "+82 (0){b}-{m}-{l}", "+82 0{b}-{m}-{l}"])
            s = form.format(b=body, m=mid, l=self.digits(4))
        elif lang == "en":
            form = self.r.choice(["({a}) {b}-{c}", "{a}-{b}-{c}", "+1 {a}-{b}-{c}", "+1 ({a}) {b}-{c}", "{a}.{b}.{c}",
                                  "+44 20 {b2} {c}", "+81 3-{c}-{c2}", "+65 {c} {c2}"])
            s = form.format(a=self.digits(3, "23456789"), b=self.digits(3, "23456789"), c=self.digits(4),
                            b2=self.digits(4, "3789"), c2=self.digits(4))
        else:
            s = f"010-{self.digits(4, '23456789')}-{self.digits(4)}"
        if self.r.random() < 0.02:  # spaces around the hyphens, as some forms print them
            s = s.replace("-", " - ")
        return self._style(s, allow_space=False)

    def email(self) -> str:
        first = self.r.choice(["hong", "kim", "lee", "park", "choi", "jung", "kang", "yoon", "jang", "lim", "han",
                               "john", "mary", "alex", "sarah", "david", "emma", "minsu", "jiyoung", "seojun", "hana"])
        last = self.r.choice(["", ".gd", "_88", "1990", ".s", "-kr", ".dev", "+news", "77", ".lee", "_work"])
        dom = self.r.choice(["naver.com", "gmail.com", "daum.net", "hanmail.net", "kakao.com", "example.co.kr",
                             "corp.example.com", "example.org", "mail.example.kr", "outlook.com", "yahoo.co.kr",
                             "school.ac.kr", "go.kr", "company.io"])
        s = first + last + "@" + dom
        if self.r.random() < 0.05:
            s = s.replace("@", "＠")
        if self.r.random() < 0.05:
            s = s.capitalize()
        return s

    def card(self, domestic_ok: bool = False) -> str:
        kind = self.r.choice(["visa", "visa", "mc", "mc", "mc2", "amex", "jcb", "unionpay", "discover", "diners"]
                             + (["bc"] if domestic_ok else []))
        if kind == "amex":
            d = _luhn_complete(self.r.choice(["34", "37"]), 15, self.r)
            groups = [d[:4], d[4:10], d[10:]]
        elif kind == "diners":
            d = _luhn_complete(self.r.choice(["36", "300", "305", "38"]), 14, self.r)
            groups = [d[:4], d[4:10], d[10:]]
        else:
            prefix = {"visa": "4", "mc": str(self.r.randint(51, 55)), "mc2": str(self.r.randint(2221, 2720)),
                      "jcb": str(self.r.randint(3528, 3589)), "unionpay": "62", "discover": "6011",
                      "bc": "94"}[kind]
            d = _luhn_complete(prefix, 16, self.r)
            groups = [d[i:i + 4] for i in range(0, 16, 4)]
        sep = self.r.choice(["-", "-", " ", " ", ""])
        return self._style(sep.join(groups), allow_space=False)

    def account(self) -> tuple[str, str]:
        bank, layout = self.r.choice([("국민은행", (6, 2, 6)), ("신한은행", (3, 3, 6)), ("우리은행", (4, 3, 6)),
                                      ("하나은행", (3, 6, 5)), ("농협", (3, 4, 4, 2)), ("IBK기업은행", (3, 6, 2, 3)),
                                      ("카카오뱅크", (4, 2, 7)), ("토스뱅크", (4, 4, 4)), ("SC제일은행", (3, 2, 6)),
                                      ("우체국", (6, 2, 6)), ("케이뱅크", (3, 3, 6)), ("새마을금고", (4, 2, 6, 1))])
        groups = [self.digits(n, "123456789") for n in layout]
        s = "-".join(groups) if self.r.random() < 0.8 else "".join(groups)
        return bank, self._style(s, allow_space=False)

    def ipv4(self) -> str:
        x = self.r.random()
        if x < 0.3:
            return f"192.168.{self.r.randint(0, 255)}.{self.r.randint(1, 254)}"
        if x < 0.45:
            return f"10.{self.r.randint(0, 255)}.{self.r.randint(0, 255)}.{self.r.randint(1, 254)}"
        return ".".join(str(self.r.randint(1, 223) if i == 0 else self.r.randint(0, 255)) for i in range(4))

    def ipv6(self) -> str:
        groups = [f"{self.r.randint(0, 0xFFFF):x}" for _ in range(8)]
        x = self.r.random()
        if x < 0.3:
            s = "2001:db8:" + ":".join(groups[2:])
        elif x < 0.7:
            s = "2001:db8::" + ":".join(groups[5:])
        elif x < 0.85:
            s = "fe80::" + ":".join(groups[4:])
        else:
            s = f"::ffff:{self.ipv4()}"
        return s.upper() if self.r.random() < 0.15 else s

    def name_ko(self) -> str:
        sur = self.r.choice("김이박최정강조윤장임한오서신권황안송류전홍고문양손배백허남심노하곽성차주우구")
        if self.r.random() < 0.04:
            sur = self.r.choice(["남궁", "황보", "제갈", "선우"])
        given = self.r.choice(["민수", "지영", "서준", "하늘", "영희", "철수", "지훈", "수진", "예린", "도윤", "서연",
                               "민준", "지우", "현우", "은비", "태호", "가은", "준혁", "소연", "동현", "유진", "상철"])
        return sur + given

    def address_ko(self) -> str:
        city, gu = self.r.choice([("서울특별시", "강남구"), ("서울시", "마포구"), ("서울", "종로구"),
                                  ("부산광역시", "해운대구"),
                                  ("경기도", "성남시 분당구"), ("경기도", "수원시 영통구"), ("인천광역시", "연수구"),
                                  ("대구광역시", "수성구"), ("대전광역시", "유성구"), ("광주광역시", "북구"),
                                  ("제주특별자치도", "제주시"), ("경상남도", "창원시 의창구"),
                                  ("충청북도", "청주시 상당구")])
        road = self.r.choice(["테헤란로", "월드컵북로", "세종대로", "해운대로", "판교역로", "광교중앙로",
                              "컨벤시아대로",
                              "달구벌대로", "대학로", "중앙로", "노형로", "원이대로", "상당로"])
        num = str(self.r.randint(1, 999))
        s = f"{city} {gu} {road} {num}"
        if self.r.random() < 0.3:
            s = f"{city} {gu} {road}{self.r.randint(1, 99)}길 {self.r.randint(1, 80)}"
        x = self.r.random()
        if x < 0.35:
            s += f", {self.r.randint(101, 120)}동 {self.r.randint(101, 2503)}호"
        elif x < 0.5:
            s += f" {self.r.randint(101, 1503)}호"
        return s


# ------------------------------------------------------------------------------------------ hard negatives

def negative(g: Gen, lang: str) -> str:
    """A phrase that looks like personal data and is not (with its own context words)."""
    r = g.r
    y, m, d = r.randint(1995, 2026), r.randint(1, 12), r.randint(1, 28)
    hh, mm, ss = r.randint(0, 23), r.randint(0, 59), r.randint(0, 59)
    ko = [
        f"{y}-{m:02d}-{d:02d}", f"{y}.{m:02d}.{d:02d}", f"{y}{m:02d}{d:02d}", f"{y}/{m:02d}/{d:02d}",
        f"{y}-{m:02d}-{d:02d} {hh:02d}:{mm:02d}:{ss:02d}", f"{y}{m:02d}{d:02d}{hh:02d}{mm:02d}{ss:02d}",
        f"주문번호 {y}{m:02d}{d:02d}{g.digits(5)}", f"송장번호 {g.digits(12, '3456')}",
        f"운송장 {g.digits(4)}-{g.digits(4)}-{g.digits(4)}",
        f"접수번호 {y}{m:02d}{d:02d}-{g.digits(6)}", f"예약번호 {g.digits(10, '123456789')}",
        f"{r.randint(1000, 99999999):,}원",
        f"₩{r.randint(10000, 999999999):,}", f"합계 {r.randint(1, 99)},{r.randint(100, 999)},{r.randint(100, 999)}원",
        f"총 {g.digits(10, '123456789')}원을 송금", f"v{r.randint(1, 15)}.{r.randint(0, 9)}.{g.digits(5)}",
        f"버전 {r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 99)}.{r.randint(0, 9999)}",
        f"빌드 {r.randint(10000, 29999)}.{r.randint(100, 9999)}", f"SKU-010-{g.digits(4)}-{g.digits(4)}",
        f"품번 ABC-010-{g.digits(4)}-{g.digits(4)}", f"모델명 SM-G{r.randint(900, 999)}N",
        f"카드번호 {_bad_luhn(g)}", f"사업자등록번호 {_bad_brn(g)}", f"{_bad_rrn_date(g)}",
        f"고객센터 {r.choice(['1588', '1577', '1644', '1899', '1544', '1600'])}-{g.digits(4)}",
        f"수신자부담 080-{g.digits(3, '23456789')}-{g.digits(4)}",
        f"우편번호 {g.digits(5, '0123456')}",
        f"차량번호 {r.randint(10, 399)}{r.choice('가나다라마거너더러머')} {g.digits(4)}",
        f"ISBN 978-89-{g.digits(4)}-{g.digits(3)}-{g.digits(1)}", f"바코드 880{g.digits(10)}",
        f"좌표 37.{g.digits(4)}, 126.{g.digits(4)}", f"{hh:02d}:{mm:02d}:{ss:02d}.{g.digits(3)}",
        f"MAC 00:1A:{r.randint(10, 99)}:3C:4D:{r.randint(10, 99)}", f"회원번호 {g.digits(10, '123456789')}",
        f"고객번호 {g.digits(12, '123456789')}", f"마스킹된 번호 010-****-{g.digits(4)}",
        f"{g.digits(6, '789')}-{r.choice('12')}******", f"생년월일 {g.birth().strftime('%y%m%d')}",
        f"| {y} | {r.randint(1000, 9999):,} | {r.randint(10, 99)}.{r.randint(0, 9)}% | {r.randint(100, 999)} |",
        f"{y - 3} {y - 2} {y - 1} {y}", f"매출 {g.digits(4)} {g.digits(4)} {g.digits(4)} 증가",
        f"문서번호 제{y}-{g.digits(5)}호", f"승인번호 {g.digits(8)}", f"거래번호 {g.digits(14, '123456789')}",
        f"unix {r.randint(1500000000, 1799999999)}", f"제{r.randint(1, 30)}조 제{r.randint(1, 9)}항",
        f"1.2.{r.randint(3, 9)}", f"섹션 {r.randint(1, 9)}.{r.randint(1, 9)}.{r.randint(1, 9)}.{r.randint(1, 9)}",
    ]
    en = [
        f"{y}-{m:02d}-{d:02d}", f"{m:02d}/{d:02d}/{y}", f"{y}{m:02d}{d:02d}",
        f"{y}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}Z",
        f"order #{y}{m:02d}{d:02d}{g.digits(5)}", f"Invoice INV-{y}-{g.digits(6)}", f"tracking number 1Z{g.digits(16)}",
        f"ticket {g.digits(10, '123456789')}", f"${r.randint(100, 999999):,}.{r.randint(0, 99):02d}",
        f"KRW {r.randint(1000, 99999999):,}", f"total {g.digits(10, '123456789')} won transferred",
        f"v{r.randint(1, 15)}.{r.randint(0, 9)}.{g.digits(5)}",
        f"version {r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 99)}.{r.randint(0, 9999)}",
        f"Windows 10.0.{g.digits(5)}.{g.digits(4)}", f"build {r.randint(10000, 29999)}.{r.randint(100, 9999)}",
        f"SKU-010-{g.digits(4)}-{g.digits(4)}", f"item code 010-{g.digits(4)}-{g.digits(4)}-A",
        f"part no. PN-{g.digits(3)}-{g.digits(3)}-{g.digits(4)}", f"card {_bad_luhn(g)}", f"BRN {_bad_brn(g)}",
        f"call our help desk at 1588-{g.digits(4)}", f"toll-free 080-{g.digits(3, '23456789')}-{g.digits(4)}",
        f"ZIP {g.digits(5, '123456789')}", f"ISBN 978-1-{g.digits(4)}-{g.digits(4)}-{g.digits(1)}",
        f"EAN {g.digits(13, '4579')}", f"lat 37.{g.digits(6)}, lon 126.{g.digits(6)}", f"at {hh:02d}:{mm:02d}:{ss:02d}",
        f"MAC address 00:1a:{r.randint(10, 99)}:3c:4d:{r.randint(10, 99)}", f"customer ID {g.digits(12, '123456789')}",
        f"masked 010-****-{g.digits(4)}", f"****-****-****-{g.digits(4)}",
        f"section {r.randint(1, 9)}.{r.randint(1, 9)}.{r.randint(1, 9)}.{r.randint(1, 9)}",
        f"| {y} | {r.randint(1000, 9999):,} | {r.randint(10, 99)}.{r.randint(0, 9)}% | {r.randint(100, 999)} |",
        f"{y - 3} {y - 2} {y - 1} {y}", f"revenue {g.digits(4)} {g.digits(4)} {g.digits(4)} units",
        f"reference {g.digits(14, '123456789')}", f"epoch {r.randint(1500000000, 1799999999)}",
        "SSN-like test value 000-00-0000", f"page {r.randint(1, 400)} of {r.randint(400, 900)}",
        f"serial S{y}{m:02d}{d:02d}", f"{r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}-beta",
    ]
    return r.choice(ko if lang == "ko" else en)


def _bad_luhn(g: Gen) -> str:
    d = _luhn_complete("4" if g.r.random() < 0.5 else "5" + str(g.r.randint(1, 5)), 16, g.r)
    d = d[:-1] + str((int(d[-1]) + g.r.randint(1, 9)) % 10)
    return "-".join(d[i:i + 4] for i in range(0, 16, 4))


def _bad_brn(g: Gen) -> str:
    d9 = g.digits(3, "123456789") + g.digits(2) + g.digits(4)
    d = d9 + str((_brn_check(d9) + g.r.randint(1, 9)) % 10)
    return f"{d[:3]}-{d[3:5]}-{d[5:]}"


def _bad_rrn_date(g: Gen) -> str:
    yy, mm, dd = g.r.randint(40, 99), g.r.choice([0, 13, 14, 19]), g.r.randint(1, 28)
    if g.r.random() < 0.5:
        mm, dd = 2, g.r.choice([30, 31])
    return f"{yy:02d}{mm:02d}{dd:02d}-{g.r.choice('12')}{g.digits(6)}"


# ------------------------------------------------------------------------------------------ templates
# {SLOT}s: a labelled value (RRN, FRN, BRN, PASS, DL, PHONE, EMAIL, CARD, ACC, BANKACC, IP4, IP6, NAME, ADDR),
# an unlabelled filler (NEG, DATE, TIME, AMOUNT, BANK, EN_NAME, NUM). A trailing "c" (RRNc, BRNc, DLc) asks
# for a layout that needs no context, for templates that give none.

KO = [
    "안녕하세요, 제 연락처는 {PHONE}입니다.",
    "고객님 휴대폰 번호 {PHONE}로 인증번호를 보내 드렸습니다.",
    "상담원: 본인 확인을 위해 주민등록번호를 말씀해 주세요.\n고객: {RRN}이요.",
    "성명: {NAME}\n주민등록번호: {RRN}\n주소: {ADDR}\n연락처: {PHONE}",
    "[신청서] 신청인 {NAME} / 생년월일 {DATE} / 휴대전화 {PHONE} / 이메일 {EMAIL}",
    "{NAME}님, 주문하신 상품이 {DATE}에 발송되었습니다. {NEG}",
    "환불 계좌는 {BANKACC}로 입금 부탁드립니다.",
    "입금 계좌: {BANKACC} (예금주 {NAME})",
    "세금계산서 발행 요청 — 상호 (주)가나다상사, 사업자등록번호 {BRN}, 담당자 메일 {EMAIL}",
    "거래처 사업자번호는 {BRN}이고 담당 부서 전화는 {PHONE}입니다.",
    "여권번호 {PASS}, 만료일 {DATE}",
    "운전면허번호 {DL}로 본인 인증을 완료했습니다.",
    "면허증 번호가 {DL}인데 맞나요?",
    "결제 카드 {CARD} 승인 완료. {NEG}",
    "카드번호 {CARD}로 결제하신 {AMOUNT}이 취소되었습니다.",
    "[로그] {DATE} {TIME} 접속 IP {IP4} 로그인 실패 (5회)",
    "관리자 페이지 접근 허용 IP: {IP4}, {IP6}",
    "외국인등록번호 {FRN}와 여권번호 {PASS}를 함께 제출해 주세요.",
    "인사기록카드 — 이름 {NAME}, 사번 {NUM}, 주민번호 {RRN}, 비상연락처 {PHONE}",
    "{NAME} 과장 연락처 {PHONE}, 메일 {EMAIL}",
    "배송지: {ADDR} / 받는 분 {NAME} / {PHONE}",
    "문의하신 {NEG} 건은 처리되었습니다.",
    "{NEG}, {NEG} 확인 부탁드립니다.",
    "연락 주세요: {PHONE} 또는 {PHONE}",
    "메일은 {EMAIL}으로 보내 주시고, 급한 건은 {PHONE}로 전화 주세요.",
    "본인 확인: 주민등록번호 {RRN}입니다. 등본 재발급을 신청합니다.",
    "보내실 곳: {BANKACC}, 금액 {AMOUNT}",
    "회원가입 정보 — 아이디 user{NUM}, 이메일 {EMAIL}, 휴대폰 {PHONE}",
    "{DATE} 회의록: 참석자 {NAME}, {NAME}. 다음 회의는 {DATE} 오후 2시.",
    "판매자 정보: 사업자등록번호 {BRN} / 통신판매업 신고 제{YEAR}-서울강남-{NUM5}호",
    "고객님의 IP 주소 {IP4}에서 비정상적인 접근이 감지되었습니다.",
    "공유기 관리 주소는 {IP4}입니다.",
    "외국인 근로자 {EN_NAME} 씨의 외국인등록번호는 {FRN}입니다.",
    "{NEG}",
    "{NEG}",
    "표 3. 연도별 실적\n{NEG}\n{NEG}",
    "영수증 — {DATE} {TIME}, 카드 {CARD}, {NEG}, 합계 {AMOUNT}",
    "휴대폰({PHONE})으로 연락 바랍니다.",
    "팩스 {PHONE}, 전화 {PHONE}",
    "여권 {PASS} 소지자 {NAME}님 출국 수속 안내입니다.",
    "신분증: 운전면허 {DL}",
    "문의: {EMAIL} / {PHONE}",
    "계좌번호 {ACC}, 은행 {BANK}, 예금주 {NAME}",
    "{PHONE}",
    "{RRNc} 맞으신가요?",
    "번호 확인했습니다: {RRNc}",
    "{EMAIL} 계정으로 로그인하세요.",
    "담당자 {NAME} ({EMAIL}, {PHONE})",
    "대표 {NAME}, 사업자 {BRN}, 주소 {ADDR}",
    "{NAME} 고객님 {DATE} 상담 내역: {NEG}. 연락처 {PHONE}.",
    "택배 기사님이 {PHONE}으로 연락드릴 예정입니다. {NEG}",
    "카톡 말고 문자로 주세요 {PHONE}",
    "송금할게요! {BANKACC}",
    "{BANK} {ACC} 예금주 {NAME}으로 보내주세요",
    "접속 기록: {IP6} ({TIME})",
    "VPN 게이트웨이 {IP4} 장애, {NEG}",
    "운전면허증(면허번호 {DL}) 사본 첨부",
    "Passport No. {PASS} / 성명 {NAME}",
    "재직증명서 발급 — 성명 {NAME}, 주민등록번호 {RRN}, 주소 {ADDR}",
    "{NEG} / {NEG} / {NEG}",
    "카드 {CARD} 분실 신고 접수되었습니다. 상담 {NEG}",
    "이메일 주소 변경: {EMAIL} → {EMAIL}",
    "집 주소는 {ADDR}입니다.",
    "외국인등록증 번호 {FRN}, 연락처 {PHONE}",
    "사업자 {BRNc} 휴업 여부를 조회했습니다.",
    "{NAME}씨 전화번호 {PHONE} 맞나요?",
    "제 번호 {PHONE}이에요ㅎㅎ",
]

EN = [
    "Hi, you can reach me at {PHONE} or {EMAIL}.",
    "Customer: my phone number is {PHONE}.\nAgent: thanks, I've updated your profile.",
    "Please wire the deposit to account {ACC} at {BANK_EN}.",
    "Bank: {BANK_EN}, account no. {ACC}, holder {EN_NAME}",
    "Card on file: {CARD} (exp 09/27).",
    "Your payment with card {CARD} was declined. {NEG}",
    "Server log {DATE} {TIME}: failed login from {IP4}",
    "Allowed hosts: {IP4}, {IP6}",
    "Employee record - Name: {EN_NAME}; Korean RRN: {RRN}; mobile {PHONE}; email {EMAIL}",
    "Passport number {PASS} (Republic of Korea), expires {DATE}.",
    "Driver's license {DL} issued in Korea.",
    "Business registration number {BRN} (Korea), contact {EMAIL}.",
    "Alien registration card number {FRN} - please verify.",
    "Contact sales: {PHONE}.",
    "{NEG}",
    "{NEG}",
    "{NEG}; {NEG}",
    "Bill to {EMAIL}, {NEG}",
    "Your refund will be sent to your {BANK_EN} account {ACC} within 3 business days.",
    "Ping {IP4} timed out after 3 retries.",
    "IPv6 client {IP6} connected at {TIME}.",
    "Please call {PHONE} between 9am and 6pm KST.",
    "Forwarding to {EMAIL}; cc {EMAIL}.",
    "Shipping update: {NEG}. Questions? Email {EMAIL}.",
    "Emergency contact: {EN_NAME}, {PHONE}",
    "Table 2: {NEG} | {NEG}",
    "Fax: {PHONE}",
    "The applicant's resident registration number is {RRN}.",
    "Ref: {NEG} - agent {EN_NAME} ({EMAIL})",
    "Your verification code was sent to {PHONE}.",
    "Transfer {AMOUNT_EN} to {ACC} ({BANK_EN}).",
    "{PHONE}",
    "New signup: {EMAIL} from {IP4}",
    "Hello {EN_NAME}, your order shipped. {NEG}",
    "Visa {CARD} charged {AMOUNT_EN}.",
    "Please update the card number {CARD} and billing email {EMAIL}.",
    "Firewall blocked {IP4} and {IP4} ({NEG})",
    "Korean passport {PASS}, foreigner registration no. {FRN}",
    "Mobile: {PHONE} | Office: {PHONE}",
    "RRN {RRNc} (from the scanned form)",
    "Customer reports card {CARD} stolen; {NEG}.",
    "Direct deposit - routing to {BANK_EN} acct {ACC}",
    "{NEG}, {NEG} and {NEG}",
    "Login from {IP6} flagged as unusual.",
    "Send the contract to {EMAIL} by {DATE}.",
    "Her driver licence number is {DL}.",
    "Vendor BRN {BRN}, invoice {NEG}",
    "WhatsApp me on {PHONE} pls",
    "Release notes: {NEG}",
    "Our office line is {PHONE}; my cell is {PHONE}.",
]

# rows with no personal data at all, many with the context words a detector keys on next to a look-alike
NEG_KO = [
    "{NEG}", "{NEG}, {NEG} 확인 부탁드립니다.", "표 3. 연도별 실적\n{NEG}\n{NEG}", "{NEG} / {NEG} / {NEG}",
    "문의하신 {NEG} 건은 처리되었습니다.", "입금 확인되었습니다. {NEG}", "계좌 이체 관련 문의 — {NEG}",
    "카드 결제 내역: {NEG}, {AMOUNT}", "전화 상담 예약: {NEG}", "주민센터 방문일 {DATE}, {NEG}",
    "여권 사진 규격 안내 ({NEG})",
    "운전면허 갱신 기간은 {DATE}까지입니다. {NEG}", "사업자 등록 신청서 양식 {NEG}", "서버 점검 공지: {NEG}, {NEG}",
    "송금 한도는 1일 {AMOUNT}입니다. {NEG}", "연락처 변경은 앱에서 가능합니다. {NEG}",
    "[공지] {DATE} {TIME} 시스템 업데이트 {NEG}",
]
NEG_EN = [
    "{NEG}", "{NEG}; {NEG}", "Table 2: {NEG} | {NEG}", "{NEG}, {NEG} and {NEG}", "Release notes: {NEG}",
    "Deposit received. {NEG}", "Question about my bank transfer - {NEG}", "Card statement: {NEG}, {AMOUNT_EN}",
    "Phone support hours changed; {NEG}", "Passport photo requirements ({NEG})", "License renewal due {DATE}. {NEG}",
    "Maintenance window: {NEG}, {NEG}", "Wire limit is {AMOUNT_EN} per day. {NEG}",
    "Call log exported {DATE} {TIME}, {NEG}",
    "Account settings updated at {TIME}. {NEG}",
]

BANKS_EN = ["Shinhan Bank", "KB Kookmin Bank", "Woori Bank", "Hana Bank", "NH Bank", "IBK", "KakaoBank",
            "Toss Bank", "Citibank Korea", "SC First Bank"]
EN_NAMES = ["John Smith", "Maria Garcia", "Nguyen Van An", "Aisha Khan", "Tom Baker", "Li Wei", "Anna Müller",
            "James Park", "Sofia Rossi", "David Kim"]


def render(template: str, g: Gen, lang: str) -> dict[str, object]:
    """Fill ``template``'s slots; the labelled ones become entities with their offsets."""
    r = g.r
    text = ""
    entities: list[dict[str, object]] = []
    pos = 0
    import re

    date_formats = ["%Y-%m-%d", "%Y.%m.%d", "%Y년 %m월 %d일"] if lang == "ko" else ["%Y-%m-%d", "%b %d, %Y"]
    for m in re.finditer(r"\{(\w+)\}", template):
        text += template[pos:m.start()]
        pos = m.end()
        slot = m.group(1)
        label: str | None = None
        value: str
        if slot == "BANKACC":
            bank, acc = g.account()
            text += bank + r.choice([" ", " ", ""])
            value, label = acc, "BANK_ACCOUNT"
        else:
            makers: dict[str, Callable[[], tuple[str, str | None]]] = {
                "RRN": lambda: (g.resident(bare_ok=True), "KR_RRN"),
                "RRNc": lambda: (g.resident(), "KR_RRN"),
                "FRN": lambda: (g.resident(foreign=True, bare_ok=True), "KR_FRN"),
                "BRN": lambda: (g.brn(bare_ok=True), "KR_BRN"),
                "BRNc": lambda: (g.brn(), "KR_BRN"),
                "PASS": lambda: (g.passport(), "KR_PASSPORT"),
                "DL": lambda: (g.license(bare_ok=True), "KR_DRIVER_LICENSE"),
                "PHONE": lambda: (g.phone(lang), "PHONE"),
                "EMAIL": lambda: (g.email(), "EMAIL"),
                "CARD": lambda: (g.card(domestic_ok=True), "CREDIT_CARD"),
                "ACC": lambda: (g.account()[1], "BANK_ACCOUNT"),
                "IP4": lambda: (g.ipv4(), "IP_ADDRESS"),
                "IP6": lambda: (g.ipv6(), "IP_ADDRESS"),
                "NAME": lambda: (g.name_ko(), "PERSON"),
                "ADDR": lambda: (g.address_ko(), "ADDRESS"),
                "NEG": lambda: (negative(g, lang), None),
                "DATE": lambda: (g.birth(2020, 2026).strftime(r.choice(date_formats)), None),
                "TIME": lambda: (f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}", None),
                "AMOUNT": lambda: (f"{r.randint(1000, 9999999):,}원", None),
                "AMOUNT_EN": lambda: (f"${r.randint(10, 99999):,}.{r.randint(0, 99):02d}", None),
                "BANK": lambda: (g.account()[0], None),
                "BANK_EN": lambda: (r.choice(BANKS_EN), None),
                "EN_NAME": lambda: (r.choice(EN_NAMES), None),
                "NUM": lambda: (g.digits(r.choice([5, 6, 7]), "123456789"), None),
                "NUM5": lambda: (g.digits(5), None),
                "YEAR": lambda: (str(r.randint(2015, 2026)), None),
            }
            value, label = makers[slot]()
        if label is not None:
            entities.append({"type": label, "start": len(text), "end": len(text) + len(value)})
        text += value
    text += template[pos:]
    return {"text": text, "entities": entities, "lang": lang}


def make(lang: str, n: int, seed: int) -> list[dict[str, object]]:
    g = Gen(random.Random(f"{seed}-{lang}"))
    templates, negatives = (KO, NEG_KO) if lang == "ko" else (EN, NEG_EN)
    rows = [render(g.r.choice(negatives if g.r.random() < 0.3 else templates), g, lang) for _ in range(n)]
    for row in rows:  # offsets must point at what they label
        text = str(row["text"])
        for e in row["entities"]:  # type: ignore[attr-defined]
            assert text[e["start"]:e["end"]].strip() == text[e["start"]:e["end"]], (text, e)
    return rows


def main() -> None:
    for lang in ("ko", "en"):
        rows = make(lang, N_PER_LANG, SEED)
        path = HERE / f"pii_{lang}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        counts: dict[str, int] = {}
        for row in rows:
            for e in row["entities"]:  # type: ignore[attr-defined]
                counts[e["type"]] = counts.get(e["type"], 0) + 1
        negatives = sum(1 for row in rows if not row["entities"])
        print(f"{path.name}: {len(rows)} rows, {negatives} without entities, {dict(sorted(counts.items()))}")
    rows = handwritten()
    with (HERE / "pii_handwritten.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"pii_handwritten.jsonl: {len(rows)} rows")



# ------------------------------------------------------------------------------------------ hand-written rows
# Written by hand, before the detector was run on them, and never changed after: a check that the figures on
# the generated rows are not an artefact of one author writing both the generator and the detector. [[TYPE|value]]
# marks an entity; everything else is a negative. Values are fake.

HANDWRITTEN_KO = [
    "고객님, 말씀하신 번호 [[PHONE|010-2345-6789]]으로 문자 드렸어요.",
    "주민번호는 [[KR_RRN|850315-2345672]] 입니다",
    "제 폰번호 [[PHONE|010 9876 5432]]! 저녁에 전화 주세요",
    "연락처: [[PHONE|(031) 555-1234]] / 팩스: [[PHONE|031-555-1235]]",
    "신청인 [[PERSON|박서윤]] ([[KR_RRN|010203-4567894]])",
    "법인 사업자번호 [[KR_BRN|314-86-12340]] 확인 바랍니다.",
    "국민 [[BANK_ACCOUNT|123456-01-234567]] 예금주 [[PERSON|정다은]]",
    "계좌번호는 신한 [[BANK_ACCOUNT|110-432-987654]]입니다.",
    "카드 [[CREDIT_CARD|5425 2334 3010 9903]] 로 할부 3개월",
    "메일 주소가 [[EMAIL|seoyun.park@example.co.kr]]인데 안 받아져요.",
    "접속 IP [[IP_ADDRESS|203.0.113.77]]에서 로그인 시도가 있었습니다.",
    "여권번호 [[KR_PASSPORT|M123A4567]], 영문 성명 PARK SEOYUN",
    "운전면허 [[KR_DRIVER_LICENSE|12-19-123456-11]] 사본을 보내 주세요.",
    "외국인등록번호 [[KR_FRN|920715-5123458]]로 조회했습니다.",
    "휴대전화 [[PHONE|+82-10-3456-7890]] (해외 로밍)",
    "2024년 1분기 매출은 1,234,567,000원으로 전년 대비 12.5% 증가했습니다.",
    "주문번호 20240115-0001234 / 결제일 2024.01.15 / 배송비 3,000원",
    "고객센터 1588-1234 (평일 09:00~18:00)",
    "소프트웨어 버전 v10.0.19045 이상에서 동작합니다.",
    "모델번호 SM-S918N, 일련번호 R5CT1234567",
    "품목코드 SKU-010-1234-5678 재고 12개",
    "2023-12-31 23:59:59에 점검이 끝났습니다.",
    "우편번호 06236, 전화 대표 02-1234-5678은 회사 번호입니다.",
    "표 2 | 2021 | 2022 | 2023\n매출 | 1,024 | 2,048 | 4,096",
    "사업자등록번호 123-45-67890 (잘못된 번호 예시)",
    "카드번호 1234-5678-9012-3456 은 테스트용 예시입니다.",
    "문서번호 제2024-00123호에 따라 처리합니다.",
    "ISBN 978-89-7914-123-4 도서를 주문했습니다.",
    "차량번호 12가 3456, 주차 위치 B2-17",
    "회의는 10:30:00에 시작, 참가비 50,000원",
    "[[PERSON|김민준]] 고객님 안녕하세요. [[PHONE|010-1111-2222]]로 연락드리겠습니다.",
    "받는 분: [[PERSON|이하은]] / 주소: [[ADDRESS|서울특별시 마포구 월드컵북로 396]] / 연락처 [[PHONE|010-8765-4321]]",
    "배송지 [[ADDRESS|경기도 성남시 분당구 판교역로 235, 101동 1001호]]",
    "입금은 카카오뱅크 [[BANK_ACCOUNT|3333-12-3456789]]로 해 주세요.",
    "토스 [[BANK_ACCOUNT|1000-1234-5678]]로 보내줘",
    "이 번호로 연락 주세요 → [[PHONE|０１０－５５５５－６６６６]]",
    "제 이메일은 [[EMAIL|jiwoo_lee@example.com]]이고요 회사 메일은 [[EMAIL|jwlee@corp.example.kr]]입니다",
    "서버 [[IP_ADDRESS|2001:db8:85a3::8a2e:370:7334]] 응답 없음",
    "생년월일 1990년 1월 1일, 나이 34세",
    "총 12345678901원 중 일부 입금",
    "환불계좌: 우리은행 [[BANK_ACCOUNT|1002-345-678901]] ([[PERSON|최지우]])",
    "면허번호 [[KR_DRIVER_LICENSE|서울 09-123456-78]]",
    "승인번호 30012345, 할부 0개월, 카드사 국민",
    "팩스번호 [[PHONE|02)3456-7890]]",
    "주민등록번호 뒷자리는 말씀하지 마세요. 앞자리 900101만 확인합니다.",
]

HANDWRITTEN_EN = [
    "Please call me at [[PHONE|+82 10-4321-8765]] after 6pm.",
    "My email is [[EMAIL|j.doe+support@example.com]].",
    "Card: [[CREDIT_CARD|4111 1111 1111 1111]], exp 12/28, CVV withheld.",
    "Wire to Shinhan Bank account [[BANK_ACCOUNT|110-432-987654]], SWIFT SHBKKRSE.",
    "Client IP [[IP_ADDRESS|198.51.100.23]] made 42 requests in 10 seconds.",
    "Version 2.14.3 released on 2024-03-01; see build 20240301.1.",
    "Order #2024011512345 shipped via tracking 1Z999AA10123456784.",
    "Total due: $1,234,567.89 (invoice INV-2024-000123).",
    "The applicant's RRN is [[KR_RRN|900101-1234568]].",
    "Business registration no. [[KR_BRN|314-86-12340]].",
    "Passport [[KR_PASSPORT|M12345678]] was issued in Seoul.",
    "Korean driver's license [[KR_DRIVER_LICENSE|11-22-334455-66]].",
    "Reach our toll-free line 080-123-4567 or the hotline 1588-0000.",
    "Office: [[PHONE|(02) 2345-6789]], mobile [[PHONE|010.2222.3333]].",
    "Timestamp 2024-01-15T10:30:45.123Z, latency 12.5 ms",
    "SKU-010-1234-5678 is out of stock.",
    "Table 4: 2019 2020 2021 2022 / 4,512 5,120 6,004 7,331",
    "Contact [[EMAIL|ops@example.org]] or ping [[IP_ADDRESS|fe80::1ff:fe23:4567:890a]].",
    "Refund to KakaoBank account [[BANK_ACCOUNT|3333-01-1234567]].",
    "US office: [[PHONE|+1 (415) 555-0132]]",
    "Test card 4111-1111-1111-1112 fails Luhn and must be rejected.",
    "ISBN 978-0-306-40615-7 and EAN 4006381333931",
    "IPv4 range 10.0.0.0/8 is private; the gateway is [[IP_ADDRESS|10.0.0.1]].",
    "Coordinates 37.5665, 126.9780 (Seoul City Hall)",
    "Alien registration number [[KR_FRN|920715-5123458]] on file.",
]


def handwritten() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for lang, items in (("ko", HANDWRITTEN_KO), ("en", HANDWRITTEN_EN)):
        for marked in items:
            text, entities, pos = "", [], 0
            for m in re.finditer(r"\[\[(\w+)\|(.+?)\]\]", marked):
                text += marked[pos:m.start()]
                entities.append({"type": m.group(1), "start": len(text), "end": len(text) + len(m.group(2))})
                text += m.group(2)
                pos = m.end()
            text += marked[pos:]
            rows.append({"text": text, "entities": entities, "lang": lang})
    return rows


if __name__ == "__main__":
    main()
