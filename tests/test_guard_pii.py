"""Personal-data detection (jisik.guard.pii): validators against the published algorithms, every entity type in
Korean and English, particles glued to numbers, normalisation and offsets, hard negatives, the allowlist,
masking, and time bounds on pathological input."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jisik.errors import ConfigError
from jisik.guard.base import ENTITY_TYPES
from jisik.guard.pii import PiiDetector, mask_value, normalize_for_detection
from jisik.guard.pii_validators import (
    brn_check_digit,
    brn_valid,
    card_brand,
    frn_check_digit,
    luhn_valid,
    plausible_timestamp,
    rrn_birth_date,
    rrn_check_digit,
)

# ------------------------------------------------------------------------------ reference algorithms
# written out here from the published descriptions, independently of the module under test


def ref_rrn(first12: str, foreign: bool = False) -> str:
    """주민등록번호 (pre-2020): check = (11 − Σ dᵢwᵢ mod 11) mod 10, weights 2..9,2..5; 외국인: 13 instead of 11."""
    weights = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5]
    total = sum(int(d) * w for d, w in zip(first12, weights, strict=True))
    return first12 + str(((13 if foreign else 11) - total % 11) % 10)


def ref_brn(first9: str) -> str:
    """사업자등록번호: Σ of d₁..d₈ × 1,3,7,1,3,7,1,3, plus d₉×5 and ⌊d₉×5/10⌋; check = (10 − Σ mod 10) mod 10."""
    weights = [1, 3, 7, 1, 3, 7, 1, 3]
    total = sum(int(d) * w for d, w in zip(first9[:8], weights, strict=True))
    total += int(first9[8]) * 5 + (int(first9[8]) * 5) // 10
    return first9 + str((10 - total % 10) % 10)


def ref_luhn(body: str) -> str:
    """Append the Luhn check digit (ISO/IEC 7812-1): double every second digit from the right of body+check."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # these are in odd positions once the check digit is appended
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def wrong_last(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


RRN = ref_rrn("900101123456")        # 1990-01-01, male, check digit computed
RRN_F = ref_rrn("040229412345")      # 2004-02-29 (a leap day), female, born in the 2000s
FRN = ref_rrn("850707512345", foreign=True)
BRN = ref_brn("123456789")
VISA = ref_luhn("411111111111111")
MASTER = ref_luhn("545454545454545")
AMEX = ref_luhn("37828224631000")


def detect(text: str, **kw: object) -> list[tuple[str, str]]:
    return [(e.type, e.text) for e in PiiDetector(**kw).detect(text)]  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ validators


def test_reference_values_are_what_the_algorithm_says() -> None:
    assert RRN == "9001011234568" and rrn_check_digit(RRN) == int(RRN[-1])
    assert frn_check_digit(FRN) == int(FRN[-1]) and rrn_check_digit(FRN) != int(FRN[-1])
    assert brn_check_digit(BRN) == int(BRN[-1]) and brn_valid(BRN)
    assert luhn_valid(VISA) and luhn_valid(MASTER) and luhn_valid(AMEX)
    assert VISA == "4111111111111111"  # the well-known test number, reproduced by the reference


@pytest.mark.parametrize("first9", ["123456789", "220816251", "105870000", "999999999", "101010105"])
def test_brn_check_digit_matches_reference_including_the_carry(first9: str) -> None:
    full = ref_brn(first9)
    assert brn_check_digit(first9) == int(full[-1])
    assert brn_valid(full) and not brn_valid(wrong_last(full))


def test_brn_rejects_tax_office_000_and_wrong_lengths() -> None:
    assert not brn_valid(ref_brn("000123456"))
    assert not brn_valid("12345")


@given(st.text("0123456789", min_size=12, max_size=12))
def test_rrn_and_frn_check_digits_match_reference(first12: str) -> None:
    assert rrn_check_digit(first12) == int(ref_rrn(first12)[-1])
    assert frn_check_digit(first12) == int(ref_rrn(first12, foreign=True)[-1])


@given(st.text("0123456789", min_size=12, max_size=18))
def test_luhn_matches_reference(body: str) -> None:
    full = ref_luhn(body)
    assert luhn_valid(full)
    assert not luhn_valid(wrong_last(full))


def test_birth_dates_need_a_real_calendar_day_and_a_century_digit() -> None:
    assert str(rrn_birth_date("9001011")) == "1990-01-01"
    assert str(rrn_birth_date("0402294")) == "2004-02-29"
    assert rrn_birth_date("0502293") is None      # 2005 is not a leap year
    assert rrn_birth_date("9002301") is None      # 30 February
    assert rrn_birth_date("9913011") is None      # month 13
    assert str(rrn_birth_date("5001019")) == "1850-01-01"  # 9/0: born in the 1800s
    assert rrn_birth_date("9901013") is None      # 2099: in the future


def test_card_brands_follow_iin_ranges() -> None:
    assert card_brand(VISA) == "visa"
    assert card_brand(MASTER) == "mastercard"
    assert card_brand(ref_luhn("222100000000000")) == "mastercard"   # the 2-series
    assert card_brand(AMEX) == "amex"
    assert card_brand(ref_luhn("353011133330000")) == "jcb"
    assert card_brand(ref_luhn("1234567812345")) is None


def test_plausible_timestamps() -> None:
    assert plausible_timestamp("20240115") and plausible_timestamp("20240115103045")
    assert not plausible_timestamp("20241315") and not plausible_timestamp("20240115253045")
    assert not plausible_timestamp("1234567890")


# ------------------------------------------------------------------------------ each type


@pytest.mark.parametrize(("text", "expected"), [
    (f"주민등록번호 {RRN[:6]}-{RRN[6:]}", ("KR_RRN", f"{RRN[:6]}-{RRN[6:]}")),
    (f"RRN {RRN_F[:6]}-{RRN_F[6:]}", ("KR_RRN", f"{RRN_F[:6]}-{RRN_F[6:]}")),
    (f"외국인등록번호: {FRN[:6]}-{FRN[6:]}", ("KR_FRN", f"{FRN[:6]}-{FRN[6:]}")),
    (f"사업자등록번호 {BRN[:3]}-{BRN[3:5]}-{BRN[5:]}", ("KR_BRN", f"{BRN[:3]}-{BRN[3:5]}-{BRN[5:]}")),
    (f"사업자번호 {BRN}", ("KR_BRN", BRN)),
    ("여권번호 M12345678", ("KR_PASSPORT", "M12345678")),
    ("passport M123A4567 issued 2023", ("KR_PASSPORT", "M123A4567")),
    ("운전면허 11-12-345678-90", ("KR_DRIVER_LICENSE", "11-12-345678-90")),
    ("면허번호 서울 12-345678-90", ("KR_DRIVER_LICENSE", "서울 12-345678-90")),
    ("driver license 111234567890", ("KR_DRIVER_LICENSE", "111234567890")),
    ("hong.gildong@example.co.kr", ("EMAIL", "hong.gildong@example.co.kr")),
    (f"card {VISA[:4]} {VISA[4:8]} {VISA[8:12]} {VISA[12:]}",
     ("CREDIT_CARD", f"{VISA[:4]} {VISA[4:8]} {VISA[8:12]} {VISA[12:]}")),
    (f"Amex {AMEX[:4]}-{AMEX[4:10]}-{AMEX[10:]}", ("CREDIT_CARD", f"{AMEX[:4]}-{AMEX[4:10]}-{AMEX[10:]}")),
    (f"결제 {MASTER}", ("CREDIT_CARD", MASTER)),
    ("신한은행 110-123-456789", ("BANK_ACCOUNT", "110-123-456789")),
    ("환불 계좌 3333-01-1234567 (카카오뱅크)", ("BANK_ACCOUNT", "3333-01-1234567")),
    ("account no. 1002345678901", ("BANK_ACCOUNT", "1002345678901")),
    ("접속 IP 192.168.0.17", ("IP_ADDRESS", "192.168.0.17")),
    ("client 2001:db8::8a2e:370:7334 connected", ("IP_ADDRESS", "2001:db8::8a2e:370:7334")),
    ("mapped ::ffff:192.0.2.128 ok", ("IP_ADDRESS", "::ffff:192.0.2.128")),
])
def test_each_type(text: str, expected: tuple[str, str]) -> None:
    assert detect(text) == [expected]


@pytest.mark.parametrize("phone", [
    "010-1234-5678", "01012345678", "010 1234 5678", "010.1234.5678", "011-234-5678", "019-2345-6789",
    "02-123-4567", "02-1234-5678", "(02) 1234-5678", "031-123-4567", "064-712-3456", "070-1234-5678",
    "0505-123-4567", "+82 10-1234-5678", "+82-10-1234-5678", "+821012345678", "+82 (0)2 1234 5678",
    "+82 2-123-4567", "010 - 1234 - 5678", "+1 (415) 555-0132", "(415) 555-0132", "+44 20 7946 0958",
])
def test_phone_formats(phone: str) -> None:
    assert detect(f"연락처 {phone} 입니다") == [("PHONE", phone)]


def test_company_numbers_are_not_personal() -> None:
    """15xx/16xx/18xx (대표번호) and 080 numbers belong to companies: not reported."""
    assert detect("고객센터 1588-1234, 수신자부담 080-123-4567, 1644-0000") == []


def test_resident_number_check_digit_failure_lowers_the_score_instead_of_rejecting() -> None:
    bad = wrong_last(RRN)
    good = PiiDetector().detect(f"{RRN[:6]}-{RRN[6:]}")[0]
    post_2020 = PiiDetector().detect(f"{bad[:6]}-{bad[6:]}")[0]
    assert good.score > post_2020.score >= 0.5 and post_2020.type == "KR_RRN"
    assert PiiDetector().detect(bad) == []                    # bare, no context, no check: not enough
    assert detect(f"주민번호 {bad}") == [("KR_RRN", bad)]    # context makes up for it
    assert detect(f"{RRN[:2]}1301-{RRN[7:]}") == []           # month 13: never


def test_gender_digit_separates_resident_and_foreigner_numbers() -> None:
    for digit, typ in (("1", "KR_RRN"), ("2", "KR_RRN"), ("5", "KR_FRN"), ("6", "KR_FRN")):
        number = ref_rrn("900101" + digit + "23456", foreign=typ == "KR_FRN")
        assert detect(f"{number[:6]}-{number[6:]}") == [(typ, f"{number[:6]}-{number[6:]}")]


def test_invalid_checksums_are_rejected_for_cards_and_business_numbers() -> None:
    assert detect(f"카드번호 {wrong_last(VISA)}") == []
    bad = wrong_last(BRN)
    assert detect(f"사업자등록번호 {bad[:3]}-{bad[3:5]}-{bad[5:]}") == []


def test_bank_accounts_need_context() -> None:
    assert detect("110-123-456789") == []
    assert detect("계좌 110-123-456789") == [("BANK_ACCOUNT", "110-123-456789")]
    assert detect("입금 확인, 주문번호 2024011512345") == []       # the order word is nearer
    assert detect("총 3500000000원을 송금했습니다") == []           # an amount
    assert detect("입금일시 20240115103045") == []                 # a timestamp


def test_optional_types_are_off_by_default() -> None:
    text = "성명: 홍길동, 주소: 서울특별시 강남구 테헤란로 123"
    assert detect(text) == []
    assert detect(text, names=True, addresses=True) == [("PERSON", "홍길동"),
                                                         ("ADDRESS", "서울특별시 강남구 테헤란로 123")]


def test_person_names_need_a_title_or_label() -> None:
    d = PiiDetector(types=[], names=True)
    found = [e.text for e in d.detect("김민수 고객님, 예금주 차가은으로 보내 주세요. 참석자 이도윤, 강수진.")]
    assert found == ["김민수", "차가은", "이도윤", "강수진"]
    assert d.detect("고객님 안녕하세요. 기사님이 곧 도착합니다. 서울에서 만나요.") == []
    assert all(e.score < 0.9 for e in d.detect("홍길동님"))


@pytest.mark.parametrize("address", [
    "서울특별시 강남구 테헤란로 123",
    "경기도 성남시 분당구 판교역로 235, 101동 1001호",
    "부산 해운대구 해운대로 570 1203호",
    "서울 종로구 세종대로 110 (세종로)",
    "대구광역시 수성구 범어동 123-45",
])
def test_addresses(address: str) -> None:
    assert detect(f"주소: {address}입니다", types=[], addresses=True) == [("ADDRESS", address)]


# ------------------------------------------------------------------------------ Korean particles, boundaries


@pytest.mark.parametrize(("text", "value"), [
    (f"{RRN[:6]}-{RRN[6:]}입니다", f"{RRN[:6]}-{RRN[6:]}"),
    ("010-1234-5678로 연락 주세요", "010-1234-5678"),
    ("번호는010-1234-5678이에요", "010-1234-5678"),
    ("hong@example.com으로 보내세요", "hong@example.com"),
    ("192.168.0.1에서 접속", "192.168.0.1"),
])
def test_particles_glued_to_the_value(text: str, value: str) -> None:
    assert [v for _, v in detect(text)] == [value]


@pytest.mark.parametrize("text", [
    "010-1234-56789", "9010-1234-5678", "010-1234-5678a", "SKU-010-1234-5678", "A_010-1234-5678",
    "010-1234-5678-9", "1.010.1234.5678",
])
def test_digits_or_letters_around_a_number_block_it(text: str) -> None:
    assert detect(text) == []


# ------------------------------------------------------------------------------ normalisation and offsets


def test_normalisation_maps_back_to_the_original() -> None:
    text = "전화：０１０－１２３４－５６７８，\u200b메일 ｈｏｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ"
    norm, index = normalize_for_detection(text)
    assert "010-1234-5678" in norm and "hong@example.com" in norm and "\u200b" not in norm
    assert len(index) == len(norm) and all(text[index[i]].isspace() or norm[i] != "" for i in range(len(norm)))
    found = PiiDetector().detect(text)
    assert [(e.type, e.text) for e in found] == [("PHONE", "０１０－１２３４－５６７８"),
                                                ("EMAIL", "ｈｏｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ")]
    assert all(text[e.start:e.end] == e.text for e in found)


@pytest.mark.parametrize("dash", ["-", "－", "‐", "‑", "–", "—", "−"])
def test_every_dash_is_a_hyphen(dash: str) -> None:
    value = f"010{dash}1234{dash}5678"
    assert detect(f"연락처 {value}") == [("PHONE", value)]


@pytest.mark.parametrize("zw", ["\u200b", "\u200c", "\u200d", "\ufeff", "\u2060"])
def test_zero_width_characters_inside_a_number(zw: str) -> None:
    value = f"{RRN[:6]}{zw}-{RRN[6:9]}{zw}{RRN[9:]}"
    found = PiiDetector().detect(f"주민번호 {value} 확인")
    assert [(e.type, e.text) for e in found] == [("KR_RRN", value)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([
    "010-1234-5678", "주민번호 " + RRN, "２０２４－０１－１５", "hong@example.com", "\u200b", "，", " ", "입니다",
    "1,234,567원", "v10.0.19045", "계좌 110-123-456789", "가", "a", "7", "—", "192.168.0.1", "＠",
]), max_size=12))
def test_entities_are_sorted_disjoint_and_slice_the_original(parts: list[str]) -> None:
    text = "".join(parts)
    found = PiiDetector(names=False, addresses=True).detect(text)
    assert all(text[e.start:e.end] == e.text for e in found)
    assert all(a.end <= b.start for a, b in itertools.pairwise(found))
    assert all(0.5 <= e.score <= 1 and e.type in ENTITY_TYPES for e in found)


def test_batch_is_the_main_path() -> None:
    texts = ["010-1234-5678", "", "nothing here", f"주민번호 {RRN}"]
    d = PiiDetector()
    assert d.detect_batch(texts) == [d.detect(t) for t in texts]


# ------------------------------------------------------------------------------ hard negatives


@pytest.mark.parametrize("text", [
    "2024-01-15", "20240115", "2024.01.15", "2024/01/15 10:30:45", "2024-01-15T10:30:45Z", "20240115103045",
    "주문번호 2024011512345", "송장번호 123456789012", "Invoice INV-2024-000123", "order #2010110998782",
    "1,234,567원", "₩12,345,000", "$1,234.56", "v10.0.19045", "Windows 10.0.19045.3803", "버전 1.2.3.4",
    "section 4.1.2.3", "SKU-010-1234-5678", "품번 ABC-010-1234-5678", "ISBN 978-89-1234-567-8",
    "우편번호 06236", "차량번호 12가 3456", "MAC 00:1A:2B:3C:4D:5E", "10:30:45", "좌표 37.5665, 126.9780",
    "| 2021 | 1,234 | 56.7% | 890 |", "2019 2020 2021 2022", "매출 1234 5678 9012 증가", "900101-1******",
    "010-****-5678", "****-****-****-1234", "생년월일 900101", "제13조 제2항", "바코드 8801234567890",
    "unix 1705312245", "승인번호 30012345", "serial S20240115", "모델명 M12345678",
])
def test_hard_negatives(text: str) -> None:
    assert detect(text) == []


# ------------------------------------------------------------------------------ allowlist, options


def test_allowlist_compares_after_normalisation() -> None:
    d = PiiDetector(allowlist=["02-1234-5678", "Help@Example.com"])
    assert d.detect("대표 ０２ １２３４ ５６７８, help@example.com, 010-1234-5678")[0].text == "010-1234-5678"
    assert len(d.detect("대표 ０２ １２３４ ５６７８, help@example.com, 010-1234-5678")) == 1
    assert PiiDetector(allowlist=["+82 2-1234-5678"]).detect("02-1234-5678") == []


def test_types_and_min_score() -> None:
    text = f"010-1234-5678, {RRN[:6]}-{RRN[6:]}"
    assert [e.type for e in PiiDetector(types=["KR_RRN"]).detect(text)] == ["KR_RRN"]
    assert PiiDetector(min_score=0.99).detect(text) == []
    with pytest.raises(ConfigError, match="NOT_A_TYPE"):
        PiiDetector(types=["NOT_A_TYPE"])
    with pytest.raises(ConfigError):
        PiiDetector(min_score=2)


def test_scores_and_reasons() -> None:
    e = PiiDetector().detect(f"주민등록번호 {RRN[:6]}-{RRN[6:]}")[0]
    assert e.score >= 0.9 and "check digit ok" in e.reason
    assert e.to_dict()["type"] == "KR_RRN"


# ------------------------------------------------------------------------------ masking


@pytest.mark.parametrize(("typ", "value", "masked"), [
    ("PHONE", "010-1234-5678", "010-****-5678"),
    ("PHONE", "010 1234 5678", "010 **** 5678"),
    ("PHONE", "01012345678", "010****5678"),
    ("PHONE", "+82 10-1234-5678", "+82 10-****-5678"),
    ("EMAIL", "hong@example.com", "h***@example.com"),
    ("KR_RRN", "900101-1234568", "900101-1******"),
    ("KR_FRN", "9001015234567", "9001015******"),
    ("KR_BRN", "123-45-67891", "123-45-*****"),
    ("CREDIT_CARD", "4111-1111-1111-1234", "****-****-****-1234"),
    ("CREDIT_CARD", "4111111111111234", "************1234"),
    ("BANK_ACCOUNT", "110-123-456789", "***-***-**6789"),
    ("KR_PASSPORT", "M12345678", "M********"),
    ("KR_DRIVER_LICENSE", "11-12-345678-90", "11-12-******-**"),
    ("IP_ADDRESS", "192.168.10.24", "192.168.**.**"),
    ("PERSON", "남궁민수", "남**수"),
])
def test_mask_value(typ: str, value: str, masked: str) -> None:
    assert mask_value(typ, value) == masked
    assert len(mask_value(typ, value)) == len(value)


def test_masking_a_detected_entity_hides_it_from_the_detector() -> None:
    text = f"연락처 010-1234-5678, 주민번호 {RRN[:6]}-{RRN[6:]}, 카드 {VISA}"
    d = PiiDetector()
    masked = text
    for e in reversed(d.detect(text)):
        masked = masked[:e.start] + mask_value(e.type, e.text) + masked[e.end:]
    assert d.detect(masked) == []


# ------------------------------------------------------------------------------ bounded time


@pytest.mark.parametrize("text", [
    "1" * 100_000, "-" * 100_000, "1-" * 50_000, "1 " * 50_000, "1." * 50_000, "1:" * 50_000, ":" * 100_000,
    "a:" * 50_000, "a@" * 50_000, "a" * 100_000, "a." * 50_000 + "@", "+8" * 50_000, "(0" * 50_000,
    "가" * 100_000, "서울 " * 30_000, "010-1234-" * 10_000, "１" * 100_000, "1\u200b" * 50_000,
    "서울특별시 강남구 " * 10_000, "a@b." * 25_000, "abcdef0123:" * 10_000, "010-1234-5678 " * 5_000,
])
def test_pathological_input_is_time_bounded(text: str) -> None:
    d = PiiDetector(addresses=True)
    # CPU time, not wall time: what a backtracking pattern would burn, unaffected by other jobs on a shared machine
    start = time.process_time()
    d.detect(text)
    assert time.process_time() - start < 1.0


def test_presidio_is_not_a_runtime_dependency() -> None:
    code = "import sys, jisik.guard.pii; assert not any(m.startswith('presidio') for m in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
