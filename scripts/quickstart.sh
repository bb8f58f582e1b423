#!/usr/bin/env bash
# Install jisik into .venv and run the main job on the embedded defaults: ingest the bundled
# Korean + English sample folder, search it, and answer questions with citations (extractive
# answerer: no LLM needed; each answer cites file, page and span).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e .
rm -rf demo-kb
jisik init demo-kb
jisik ingest examples/sample_docs --kb demo-kb
jisik search "반품 기간은 며칠인가요?" --kb demo-kb -k 3
jisik search "how many days of annual leave do I get?" --kb demo-kb -k 3
jisik search "배송비" --kb demo-kb --mode bm25 --filter "source=policies/*" -k 2
jisik ask "반품 기간은 며칠인가요?" --kb demo-kb
jisik ask "How many days of annual leave do I get?" --kb demo-kb
jisik logs --kb demo-kb
jisik status --kb demo-kb
