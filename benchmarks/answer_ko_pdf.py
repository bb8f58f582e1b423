"""The default answerer on Korean PDFs made here: regulations, a court ruling, financial statements.

There is no public Korean PDF set with questions in ``../shared/data``, so this script writes one with
reportlab (its built-in CID font ``HYSMyeongJo-Medium``, which PDFium extracts as Unicode Hangul): three
documents, eight A4 pages, in the style of real Korean documents — dates written ``2024. 3. 15.``, articles
``제3조(정의) 1.``, items ``Ⅰ. 유동자산``, amounts ``30,000,000원``, rates ``(3.5%)`` — with a running header
and a page-number footer on every page, lines wrapped at the page width as a word processor would (so a
date may straddle two lines). Each of the 16 questions has one gold answer, a date or a figure, written by
hand from the text below.

They are ingested into a fresh knowledge base with the default configuration and asked with ``kb.ask``
(extractive answerer). Reported: **answer found** (the gold string, whitespace ignored, is in the answer),
**gold cited** (a citation points at the gold document), **not found**, and **furniture quoted** (the answer
quotes a running header or footer)::

    python benchmarks/answer_ko_pdf.py
    python benchmarks/answer_ko_pdf.py --keep .bench/answer-ko-pdf/pdfs   # also keep the PDFs to look at

Results go to docs/benchmarks-answer.md.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import machine, package_versions
from answer_sec10q import ROOT, default_embedder

CACHE = ROOT / ".bench" / "answer-ko-pdf" / "vectors"
FONT = "HYSMyeongJo-Medium"

# -- the documents: pages of paragraphs --------------------------------------------------------------
REFUND = [
    ["제1장 총칙",
     '제1조(목적) 이 규정은 주식회사 지식마켓(이하 "회사"라 한다)이 판매하는 상품의 환불 절차와 기준을 정함을 '
     "목적으로 한다.",
     '제2조(정의) 1. "회원"이란 회사와 이용계약을 체결하고 회사가 제공하는 서비스를 이용하는 자를 말한다. '
     '2. "환불"이란 회원이 지급한 상품 대금의 전부 또는 일부를 돌려주는 것을 말한다. '
     '3. "영업일"이란 토요일, 일요일 및 공휴일을 제외한 날을 말한다.',
     "제3조(적용 범위) 이 규정은 회사의 온라인 상점과 오프라인 매장에서 판매한 모든 상품에 적용한다. "
     "다만, 별도의 약정이 있는 경우에는 그 약정에 따른다."],
    ["제2장 환불의 절차",
     "제4조(환불 신청) 1. 회원은 상품을 받은 날부터 14일 이내에 환불을 신청할 수 있다. "
     "2. 상품이 표시·광고의 내용과 다른 경우에는 그 사실을 안 날부터 30일 이내에 신청할 수 있다.",
     "제5조(환불 기한) 회사는 환불 신청을 받은 날부터 3영업일 이내에 결제 수단으로 대금을 돌려준다.",
     "제6조(수수료) 단순 변심에 의한 환불은 결제 금액의 (3.5%)를 수수료로 공제한 금액을 돌려준다. "
     "상품의 하자로 인한 환불에는 수수료를 공제하지 아니한다."],
    ["부칙",
     "제7조(시행일) 1. 새 환불 규정은 2024. 3. 15.부터 시행되며, 종전의 환불 규정은 같은 날 폐지된다. "
     "2. 이 규정 시행 전에 접수된 환불 신청은 종전의 규정에 따른다.",
     "제8조(제정) 이 규정은 2023. 12. 1. 이사회 의결을 거쳐 제정되었다."],
]
RULING = [
    ["서울중앙지방법원 제12민사부 판결",
     "사건 2019가합12345 대여금. 원고 김갑동, 피고 이을서.",
     "1. 기초 사실 가. 원고는 2012. 6. 5.경 피고에게 금 30,000,000원을 이자 연 5%, 변제기 2013. 6. 4.로 "
     "정하여 대여하였다. 나. 피고는 2014. 1. 10. 원고에게 위 대여금 중 금 10,000,000원을 변제하였다. "
     "다. 원고는 2018. 11. 20. 피고에게 나머지 대여금의 지급을 최고하였으나 피고는 이를 지급하지 아니하였다."],
    ["2. 판단",
     "위 인정 사실에 의하면 피고는 원고에게 나머지 대여금 20,000,000원 및 이에 대하여 변제기 다음 날인 "
     "2013. 6. 5.부터 다 갚는 날까지 연 12%의 비율로 계산한 지연손해금을 지급할 의무가 있다.",
     "3. 결론 그렇다면 원고의 청구는 이유 있으므로 이를 인용하기로 하여 주문과 같이 판결한다. "
     "판결 선고 2020. 2. 14."],
]
STATEMENTS = [
    ["재무상태표 (제15기 1분기 2023. 9. 30. 현재, 단위: 원)",
     "Ⅰ. 유동자산 2,624,691,346\n1. 현금및현금성자산 1,234,567,890\n2. 단기금융상품 500,000,000\n"
     "3. 매출채권 890,123,456",
     "Ⅱ. 비유동자산 3,667,776,666\n1. 유형자산 3,210,987,654\n2. 무형자산 456,789,012",
     "자산총계 6,292,468,012"],
    ["Ⅲ. 유동부채 1,100,000,000\n1. 매입채무 700,000,000\n2. 단기차입금 400,000,000",
     "Ⅳ. 비유동부채 900,000,000\n1. 장기차입금 900,000,000",
     "부채총계 2,000,000,000",
     "자본총계 4,292,468,012"],
    ["주석",
     "1. 회사의 개요 당사는 2005. 4. 1. 설립되었으며, 2010. 7. 20. 코스닥시장에 주식을 상장하였다. "
     "당사의 주요 사업은 전자상거래 플랫폼 운영이다.",
     "2. 차입금 단기차입금 400,000,000원은 연 (4.2%)의 이자율로 2024. 6. 30.까지 상환하여야 한다. "
     "장기차입금의 만기는 2027. 12. 31.이다."],
]
DOCUMENTS = {
    "환불규정.pdf": ("주식회사 지식마켓 | 환불 규정 (2024년 개정)", REFUND),
    "대여금판결.pdf": ("서울중앙지방법원 2019가합12345", RULING),
    "재무제표.pdf": ("주식회사 지식마켓 | 제15기 1분기 보고서", STATEMENTS),
}


@dataclass(frozen=True)
class Question:
    text: str
    gold: str  # the answer as written in the document
    doc: str


QUESTIONS = [
    Question("새 환불 규정은 언제부터 시행되나요?", "2024. 3. 15.", "환불규정.pdf"),
    Question("단순 변심으로 환불하면 수수료는 결제 금액의 몇 퍼센트인가요?", "3.5%", "환불규정.pdf"),
    Question("환불 규정은 언제 이사회 의결을 거쳐 제정되었나요?", "2023. 12. 1.", "환불규정.pdf"),
    Question("회사는 환불 신청을 받은 날부터 며칠 이내에 대금을 돌려주나요?", "3영업일", "환불규정.pdf"),
    Question("상품을 받은 날부터 며칠 이내에 환불을 신청할 수 있나요?", "14일", "환불규정.pdf"),
    Question("원고는 언제 피고에게 돈을 대여하였나요?", "2012. 6. 5.", "대여금판결.pdf"),
    Question("원고가 피고에게 대여한 금액은 얼마인가요?", "30,000,000원", "대여금판결.pdf"),
    Question("피고는 언제 대여금 일부를 변제하였나요?", "2014. 1. 10.", "대여금판결.pdf"),
    Question("지연손해금은 연 몇 퍼센트의 비율로 계산하나요?", "12%", "대여금판결.pdf"),
    Question("판결은 언제 선고되었나요?", "2020. 2. 14.", "대여금판결.pdf"),
    Question("현금및현금성자산은 얼마인가요?", "1,234,567,890", "재무제표.pdf"),
    Question("유형자산 금액은 얼마인가요?", "3,210,987,654", "재무제표.pdf"),
    Question("자산총계는 얼마인가요?", "6,292,468,012", "재무제표.pdf"),
    Question("회사는 언제 설립되었나요?", "2005. 4. 1.", "재무제표.pdf"),
    Question("회사는 언제 코스닥시장에 상장하였나요?", "2010. 7. 20.", "재무제표.pdf"),
    Question("단기차입금의 이자율은 얼마인가요?", "4.2%", "재무제표.pdf"),
]


# -- writing the PDFs ----------------------------------------------------------------------------------
def wrap(paragraph: str, width: int = 40) -> list[str]:
    """Lines of at most ``width`` characters, broken at spaces, as a word processor wraps Korean text.

    >>> wrap("피고는 2012. 6. 5.경 원고에게 금 30,000,000원을 대여하였다.", 20)
    ['피고는 2012. 6. 5.경', '원고에게 금 30,000,000원을', '대여하였다.']
    """
    lines: list[str] = []
    for part in paragraph.split("\n"):
        lines.extend(textwrap.wrap(part, width, break_long_words=False, break_on_hyphens=False) or [""])
    return lines


def write_pdf(path: Path, header: str, pages: list[list[str]]) -> None:
    """One PDF: ``header`` on top of every page, "- n -" at the bottom, paragraphs wrapped to the page."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    c = canvas.Canvas(str(path), pagesize=A4)
    c.setTitle(path.stem)
    for number, paragraphs in enumerate(pages, start=1):
        c.setFont(FONT, 9)
        c.drawString(72, 800, header)
        c.setFont(FONT, 11)
        y = 760
        for paragraph in paragraphs:
            for line in wrap(paragraph):
                c.drawString(72, y, line)
                y -= 17
            y -= 9  # paragraph spacing, not a blank line in the text layer
        c.setFont(FONT, 9)
        c.drawCentredString(297, 40, f"- {number} -")
        c.showPage()
    c.save()


def write_corpus(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (header, pages) in DOCUMENTS.items():
        write_pdf(folder / name, header, pages)


# -- the run ------------------------------------------------------------------------------------------
def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def furniture_quoted(answer: str) -> bool:
    """Whether the answer quotes a running header or a page-number footer of these PDFs."""
    squashed = _squash(answer)
    headers = [_squash(header) for header, _ in DOCUMENTS.values()]
    return any(h in squashed for h in headers) or bool(re.search(r"-\s?\d+\s?-", answer))


def run(folder: Path, workdir: Path) -> dict[str, Any]:
    from jisik import KnowledgeBase

    embedder = default_embedder(CACHE)
    rows = []
    with KnowledgeBase.open(workdir / "kb", create=True, embedder=embedder) as kb:  # type: ignore[arg-type]
        kb.ingest([folder])
        pages = kb.status()
        for q in QUESTIONS:
            answer = kb.ask(q.text, log=False)
            text = answer.text if answer.found else ""
            rows.append({"question": q.text, "gold": q.gold, "answer": answer.text,
                         "found": _squash(q.gold) in _squash(text),
                         "gold_cited": any(Path(c.source).name == q.doc for c in answer.citations),
                         "not_found": not answer.found, "furniture": furniture_quoted(text)})
        embedder.save()
    n = len(rows)
    summary = {key: 100 * sum(r[key] for r in rows) / n for key in ("found", "gold_cited", "not_found", "furniture")}
    return {"summary": summary, "questions": n, "chunks": pages["chunks"], "answers": rows, "machine": machine(),
            "versions": package_versions(["jisik", "pypdfium2", "kiwipiepy", "reportlab"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="write the PDFs here (kept) instead of a temp folder")
    parser.add_argument("--json", type=Path, default=None, help="also write the results (and every answer) here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="jisik-answer-ko-pdf-") as tmp:
        folder = args.keep or Path(tmp) / "pdfs"
        write_corpus(folder)
        result = run(folder, Path(tmp))
    s = result["summary"]
    print("| questions | answer found % | gold cited % | not found % | furniture quoted % |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {result['questions']} | {s['found']:.1f} | {s['gold_cited']:.1f} | {s['not_found']:.1f} | "
          f"{s['furniture']:.1f} |")
    for r in result["answers"]:
        mark = "✓" if r["found"] else "✗"
        print(f"{mark} {r['question']} [{r['gold']}] -> {r['answer'][:120]!r}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
