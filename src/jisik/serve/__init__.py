"""The jisik server (``jisik serve``, ``pip install 'jisik[serve]'``): an OpenAI-compatible API, a
knowledge-base API with API keys, and the web chat UI, over the same :class:`~jisik.kb.KnowledgeBase`
the CLI uses. See docs/server.md.

Modules: :mod:`~jisik.serve.app` (settings, app, request log, health), :mod:`~jisik.serve.openai_api`,
:mod:`~jisik.serve.kb_api`, :mod:`~jisik.serve.auth` (keys, roles), :mod:`~jisik.serve.state` (keys and
jobs in SQLite), :mod:`~jisik.serve.jobs` (background ingest), :mod:`~jisik.serve.library` (the served
knowledge bases), :mod:`~jisik.serve.streaming` (server-sent events), :mod:`~jisik.serve.errors`.
"""
