"""Evaluation: metrics (:mod:`jisik.evaluate.metrics`), datasets (:mod:`jisik.evaluate.datasets`) and runs.

Every metric is a small pure function checked against a reference implementation in the tests
(BLEU against sacrebleu, ROUGE against rouge-score, EM/F1 against the official SQuAD v1.1 and
KorQuAD v1 scripts, retrieval metrics against trec_eval through pytrec_eval).
"""
