"""Test kits for code outside jisik: the store conformance suite (:mod:`jisik.testing.store`).

Imported only by tests (it needs pytest); nothing in jisik imports it.
"""
