from __future__ import annotations

from pathlib import Path

import pytest

from jisik import registry
from jisik.config import EmbedderConfig, KBConfig, dump_config, load_config
from jisik.embed import create_embedder
from jisik.errors import ConfigError


def test_defaults_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "jisik.toml"
    path.write_text(dump_config(KBConfig()), encoding="utf-8")
    assert load_config(path, environ={}) == KBConfig()


def test_unknown_key_is_named_with_valid_keys(tmp_path: Path) -> None:
    path = tmp_path / "jisik.toml"
    path.write_text("[retrieval]\nmode = 'hybrid'\nfetchk = 10\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown key 'retrieval\.fetchk'") as info:
        load_config(path, environ={})
    assert info.value.hint and "fetch_k" in info.value.hint


def test_bad_value_and_bad_toml(tmp_path: Path) -> None:
    path = tmp_path / "jisik.toml"
    path.write_text("[retrieval]\nmode = 'semantic'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"retrieval\.mode"):
        load_config(path, environ={})
    path.write_text("[retrieval\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path, environ={})


def test_environment_overrides(tmp_path: Path) -> None:
    config = load_config(None, environ={"JISIK_RETRIEVAL__K": "9", "JISIK_INDEX__KIND": "hnsw"})
    assert (config.retrieval.k, config.index.kind) == (9, "hnsw")
    with pytest.raises(ConfigError, match=r"unknown key 'retrieval\.kk'"):
        load_config(None, environ={"JISIK_RETRIEVAL__KK": "9"})


def test_weights_cannot_both_be_zero() -> None:
    with pytest.raises(ConfigError, match="cannot both be 0"):
        load_config(None, environ={}, overrides={"retrieval": {"dense_weight": 0, "bm25_weight": 0}})


def test_config_backends_are_checked_against_the_registries() -> None:
    with pytest.raises(ConfigError, match=r"'store\.backend': Input should be 'local' or 'milvus'") as info:
        load_config(None, environ={}, overrides={"store": {"backend": "cassandra"}})
    assert "invalid configuration in defaults" in info.value.message
    with pytest.raises(ConfigError, match=r"'llm\.backend': Input should be 'extractive', 'ollama'"):
        load_config(None, environ={"JISIK_LLM__BACKEND": "gpt"})
    with registry.embedders.override("mine", "jisik.embed.factories:hashing"):
        assert load_config(None, environ={"JISIK_EMBEDDER__BACKEND": "mine"}).embedder.backend == "mine"
        assert create_embedder(EmbedderConfig(backend="mine", dim=8)).model == "hashing-8"


def test_init_file_names_every_section() -> None:
    text = dump_config(KBConfig())
    for section in KBConfig.model_fields:
        assert f"[{section}]" in text
    assert '[store]\nbackend = "local"' in text and '[embedder]\nbackend = "auto"' in text
