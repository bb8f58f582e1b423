"""Merge a LoRA adapter into its base model and export the result for llama.cpp and Ollama.

``jisik tune merge RUN --gguf --ollama-modelfile`` writes, beside ``run.json`` (recorded in its ``artefacts``)::

    merged/              the full model: base weights with the adapter folded in (PEFT ``merge_and_unload``),
                         the tokenizer and its chat template; loads in jisik's ``transformers`` backend
    model.gguf           llama.cpp's GGUF of ``merged/`` (its own converter, ``convert_hf_to_gguf.py``)
    model-q4_k_m.gguf    with ``--quantize q4_k_m``: quantised by llama.cpp (``llama_model_quantize``)
    model*.log           the converter's and the quantiser's logs
    Modelfile            for ``ollama create NAME -f Modelfile``

The converter is not on PyPI as a package: it ships in the llama-cpp-python source distribution under
``vendor/llama.cpp/``. It is looked for in ``--converter PATH`` (a llama.cpp checkout, an unpacked sdist or
the sdist's ``.tar.gz``), then ``$JISIK_LLAMACPP_CONVERTER``, then the per-user cache
``<cache>/llama.cpp-<version>/`` (``$JISIK_CACHE_DIR``, else ``$XDG_CACHE_HOME/jisik``, else ``~/.cache/jisik``,
the same rule as :mod:`jisik.embed.e5fast.cache`), filled once from the sdist of the *installed*
llama-cpp-python, so the converter and the llama.cpp that loads its output agree. It runs as a child process
with this Python, so a crash or a model it does not know is a clear error, not a dead process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from jisik._paths import cache_dir
from jisik.errors import MissingDependencyError, TuningError
from jisik.tune import _deps
from jisik.tune.runs import MANIFEST, load_manifest

OUTTYPES = ("auto", "f32", "f16", "bf16", "q8_0")  # what the converter writes (auto: bf16 if the weights are)
# --quantize kinds, each llama.cpp's LLAMA_FTYPE_MOSTLY_<KIND>; k-quants need rows of 256 (llama.cpp falls back
# to a legacy type for tensors that are not)
QUANTS = ("q8_0", "q6_k", "q5_k_m", "q5_k_s", "q5_0", "q4_k_m", "q4_k_s", "q4_0", "q3_k_m", "q2_k")
DTYPES = ("auto", "float32", "bfloat16", "float16")
CONVERTER_ENV = "JISIK_LLAMACPP_CONVERTER"
CONVERTER_SCRIPT = "convert_hf_to_gguf.py"
# what the converter needs from vendor/llama.cpp (2 MB of the 77 MB sdist)
CONVERTER_PARTS = (CONVERTER_SCRIPT, "conversion/", "gguf-py/", "requirements/", "requirements.txt", "LICENSE")
CONVERTER_MARKER = "jisik-converter.json"  # written last: a cache folder without it is incomplete
SDIST = "llama-cpp-python"
CONVERTER_HINT = (f"point --converter (or ${CONVERTER_ENV}) at a llama.cpp checkout "
                  "(git clone https://github.com/ggml-org/llama.cpp), an unpacked llama-cpp-python sdist, or its "
                  ".tar.gz (pip download --no-binary :all: --no-deps llama-cpp-python==VERSION on a connected machine)")
LOG_TAIL = 15  # lines of a failed child's log quoted in the error


# ---------------------------------------------------------------- merge


@dataclass(frozen=True)
class AdapterSource:
    """A LoRA adapter, the base model it was trained on, and the run folder it belongs to (if any)."""

    adapter: Path
    base_model: Path
    run: Path | None
    task_type: str = "CAUSAL_LM"


def locate_adapter(path: Path, *, base: Path | None = None) -> AdapterSource:
    """The adapter of a run folder (``run.json`` + ``adapter/``) or a bare PEFT adapter folder, and its base
    model: ``base`` if given, else the run's ``base_model``, else the adapter's ``base_model_name_or_path``."""
    path = Path(path).expanduser()
    run: Path | None
    if (path / MANIFEST).is_file():
        run, adapter = path, path / load_manifest(path).artefacts.get("adapter", "adapter")
    elif (path / "adapter_config.json").is_file():  # an adapter folder, perhaps the adapter/ of a run
        run, adapter = (path.parent if (path.parent / MANIFEST).is_file() else None), path
    else:
        raise TuningError(f"{path} is neither a jisik tune run (no {MANIFEST}) nor a LoRA adapter folder "
                          "(no adapter_config.json)", hint="pass the --out folder of `jisik tune sft` or `jisik tune "
                          "dpo`, or a folder saved by PEFT's save_pretrained")
    if not (adapter / "adapter_config.json").is_file():
        raise TuningError(f"the run {path} has no LoRA adapter ({adapter / 'adapter_config.json'} is missing)",
                          hint="pass a run trained with LoRA (`jisik tune sft`; a full fine-tune's weights need no "
                               "merge), or let the unfinished run complete")
    config = _read_json(adapter / "adapter_config.json")
    chosen = base or (run and _run_base(run)) or config.get("base_model_name_or_path")
    if not chosen:
        raise TuningError(f"{adapter} does not say which base model it was trained on",
                          hint="pass --base PATH, the model folder the adapter was trained from")
    base_path = Path(chosen).expanduser()
    if not (base_path / "config.json").is_file() and not (base_path.suffix == ".gguf" and base_path.is_file()):
        raise TuningError(f"the base model of {path} is not a local model folder: {base_path} (no config.json)",
                          hint="restore the base model there, or pass --base PATH to the folder it was trained "
                               "from (nothing is downloaded)")
    return AdapterSource(adapter, base_path, run, str(config.get("task_type") or "CAUSAL_LM"))


def _run_base(run: Path) -> str:
    """A run's base model: the folder it was trained from (``artefacts.base_folder``: for a GGUF base, the
    dequantised copy, which loads in seconds) when it still exists, else ``base_model`` (an absolute path)."""
    manifest = load_manifest(run)
    folder = manifest.artefacts.get("base_folder")
    if folder and (Path(folder) / "config.json").is_file():
        return str(folder)
    return manifest.base_model


def merge(path: Path, out: Path | None = None, *, base: Path | None = None, dtype: str = "auto") -> Path:
    """Fold the adapter at ``path`` (a run folder or an adapter folder) into its base model and save the full
    model, the tokenizer and its chat template to ``out`` (default: ``RUN/merged``); returns ``out``.

    ``dtype``: ``auto`` keeps the base model's own (``config.json``); float32 merges without rounding.
    The folder is written beside ``out`` and renamed into place, so a failed merge leaves the old one.
    """
    _choice(dtype, DTYPES, "dtype")
    source = locate_adapter(path, base=base)
    out = Path(out) if out is not None else (source.run or source.adapter.parent) / "merged"
    for kept in (source.adapter, source.base_model):
        if out.resolve() == kept.resolve():
            raise TuningError(f"--out {out} would overwrite {kept}", hint="choose another output folder")
    torch, transformers, peft = _deps.torch(), _deps.transformers(), _deps.peft()
    auto_class = {"CAUSAL_LM": transformers.AutoModelForCausalLM,
                  "SEQ_CLS": transformers.AutoModelForSequenceClassification}.get(source.task_type)
    if auto_class is None:
        raise TuningError(f"{source.adapter} is a {source.task_type} adapter; merge handles CAUSAL_LM and SEQ_CLS")
    has_tokenizer = (source.adapter / "tokenizer_config.json").is_file()
    try:
        tokenizer = _from_pretrained(transformers.AutoTokenizer, source.adapter if has_tokenizer else source.base_model)
        if not getattr(tokenizer, "chat_template", None) and has_tokenizer:
            tokenizer.chat_template = getattr(_from_pretrained(transformers.AutoTokenizer, source.base_model),
                                              "chat_template", None)
        chosen = dtype if dtype == "auto" else getattr(torch, dtype)
        model = _from_pretrained(auto_class, source.base_model, dtype=chosen)
        if model.get_input_embeddings().num_embeddings < len(tokenizer):  # tokens added during training
            model.resize_token_embeddings(len(tokenizer))
        merged = peft.PeftModel.from_pretrained(model, str(source.adapter)).merge_and_unload()
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise TuningError(f"could not apply {source.adapter} to {source.base_model}: {exc}",
                          hint="was the adapter trained on this base model? pass --base PATH if it moved") from exc
    scratch = _scratch_dir(out)
    try:
        merged.save_pretrained(str(scratch))
        tokenizer.save_pretrained(str(scratch))
        _replace_dir(scratch, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if source.run is not None:
        record(source.run, merged=out)
    return out


def _from_pretrained(auto_class: Any, path: Path, **kwargs: Any) -> Any:
    """``auto_class.from_pretrained`` from a local folder, or from a GGUF file, dequantised into plain weights
    (``jisik tune sft --model model.gguf`` trains on such a model); nothing is downloaded."""
    if path.suffix != ".gguf":
        return auto_class.from_pretrained(str(path), local_files_only=True, **kwargs)
    loaded = auto_class.from_pretrained(str(path.parent), gguf_file=path.name, local_files_only=True, **kwargs)
    if getattr(loaded, "hf_quantizer", None) is not None:  # transformers 5 keeps a GGUF "quantizer" even when the
        parameters = list(loaded.parameters())  # weights are dense, and then refuses to save them
        if not all(type(p).__name__ == "Parameter" and p.dtype.is_floating_point for p in parameters):
            raise TuningError(f"transformers kept {path}'s weights in GGUF blocks, which cannot be merged into",
                              hint="uninstall the `kernels` package for the merge (weights are then dequantised)")
        loaded.hf_quantizer = None
        loaded.is_quantized = False
        loaded.config.__dict__.pop("quantization_config", None)
    return loaded


# ---------------------------------------------------------------- the converter


def find_converter(explicit: Path | str | None = None, *, fetch: bool = True) -> Path:
    """The llama.cpp folder holding ``convert_hf_to_gguf.py``: ``explicit``, else ``$JISIK_LLAMACPP_CONVERTER``,
    else the per-user cache for the installed llama-cpp-python (filled from its sdist when ``fetch``)."""
    given = explicit or os.environ.get(CONVERTER_ENV)
    if given:
        return _converter_at(Path(given).expanduser())
    version = _llamacpp_version()
    folder = cache_dir() / f"llama.cpp-{version}"
    if (folder / CONVERTER_MARKER).is_file() and (folder / CONVERTER_SCRIPT).is_file():
        return folder
    if not fetch:
        raise TuningError(f"llama.cpp's converter is not in the cache ({folder})", hint=CONVERTER_HINT)
    with tempfile.TemporaryDirectory(prefix="jisik-llamacpp-sdist-") as tmp:
        sdist = download_sdist(version, Path(tmp))
        return extract_converter(sdist, folder)


def download_sdist(version: str, folder: Path) -> Path:
    """``pip download`` the llama-cpp-python ``version`` source distribution into ``folder``; returns the file."""
    command = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "--retries", "2",
               "--timeout", "30", "-d", str(folder), f"{SDIST}=={version}"]
    result = subprocess.run(command, capture_output=True, text=True)
    found = sorted(folder.glob("llama_cpp_python-*.tar.gz"))
    if result.returncode != 0 or not found:
        raise TuningError(f"could not download the {SDIST} {version} source distribution, which holds llama.cpp's "
                          f"GGUF converter (offline?): {_tail(result.stdout + result.stderr, 3)}",
                          hint=CONVERTER_HINT.replace("VERSION", version))
    return found[0]


def extract_converter(sdist: Path, folder: Path) -> Path:
    """Unpack the converter's files (:data:`CONVERTER_PARTS` under ``vendor/llama.cpp/``) of the sdist ``sdist``
    into ``folder``, atomically: a temporary sibling renamed into place, the marker file written last."""
    scratch = _scratch_dir(folder)
    try:
        count = 0
        with tarfile.open(sdist, "r:gz") as archive:
            for member in archive:
                top, _, rest = member.name.partition("/vendor/llama.cpp/")
                if not rest or "/" in top or not member.isfile() or not rest.startswith(CONVERTER_PARTS):
                    continue
                if ".." in Path(rest).parts or Path(rest).is_absolute():
                    raise TuningError(f"{sdist} holds an unsafe path: {member.name}", hint="download it again")
                target = scratch / rest
                target.parent.mkdir(parents=True, exist_ok=True)
                stream = archive.extractfile(member)
                if stream is not None:
                    target.write_bytes(stream.read())
                    count += 1
        if not (scratch / CONVERTER_SCRIPT).is_file():
            raise TuningError(f"{sdist} holds no vendor/llama.cpp/{CONVERTER_SCRIPT}", hint=CONVERTER_HINT)
        marker = {"source": sdist.name, "files": count, "created": time.time()}
        (scratch / CONVERTER_MARKER).write_text(json.dumps(marker) + "\n")
        try:
            os.replace(scratch, folder)
        except OSError:  # another process filled it first (a non-empty folder cannot be replaced): use theirs
            if not (folder / CONVERTER_MARKER).is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


def _converter_at(path: Path) -> Path:
    if path.is_file() and path.name.endswith(".tar.gz"):
        folder = cache_dir() / path.name.removesuffix(".tar.gz")
        return folder if (folder / CONVERTER_MARKER).is_file() else extract_converter(path, folder)
    for candidate in (path, path / "vendor" / "llama.cpp"):
        if (candidate / CONVERTER_SCRIPT).is_file():
            return candidate
    raise TuningError(f"no llama.cpp converter at {path} ({CONVERTER_SCRIPT} not found)", hint=CONVERTER_HINT)


def _llamacpp_version() -> str:
    try:
        return metadata.version(SDIST)
    except metadata.PackageNotFoundError:
        raise MissingDependencyError(f"{SDIST} is not installed: the GGUF converter is taken from its version's "
                                     "source distribution", hint=f"pip install 'jisik[llamacpp]', or {CONVERTER_HINT}"
                                     ) from None


def to_gguf(model_dir: Path, out: Path, *, outtype: str = "auto", converter: Path | str | None = None) -> Path:
    """Convert the Hugging Face model folder ``model_dir`` to the GGUF file ``out`` with llama.cpp's converter
    (log: ``out`` with ``.log``); returns ``out``. ``outtype``: one of :data:`OUTTYPES`."""
    _choice(outtype, OUTTYPES, "GGUF type")
    if not (model_dir / "config.json").is_file():
        raise TuningError(f"{model_dir} is not a model folder (no config.json)", hint="run `jisik tune merge` first")
    llama_cpp_dir = find_converter(converter)
    part = out.with_name(out.name + ".part")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(llama_cpp_dir / "gguf-py"),
                                                                      os.environ.get("PYTHONPATH")])),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, str(llama_cpp_dir / CONVERTER_SCRIPT), str(model_dir), "--outfile", str(part),
               "--outtype", outtype]
    _run_logged(command, out.with_suffix(".log"), part, out, env=env,
                what=f"llama.cpp's converter ({llama_cpp_dir / CONVERTER_SCRIPT}) failed on {model_dir}",
                hint="is the architecture one llama.cpp supports? a newer llama.cpp checkout via --converter may")
    return out


_QUANTIZE_CHILD = """
import ctypes, sys
import llama_cpp
if not hasattr(llama_cpp, "llama_model_quantize") or not hasattr(llama_cpp, sys.argv[3]):
    print("jisik: this llama-cpp-python has no llama_model_quantize binding or no " + sys.argv[3]); sys.exit(3)
llama_cpp.llama_backend_init()
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = getattr(llama_cpp, sys.argv[3])
params.nthread = int(sys.argv[4])
code = llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(params))
print(f"jisik: llama_model_quantize returned {code}"); sys.exit(0 if code == 0 else 1)
"""


def quantize(gguf: Path, out: Path, *, kind: str = "q4_k_m", threads: int = 0) -> Path:
    """Quantise the GGUF file ``gguf`` to ``out`` with llama.cpp's ``llama_model_quantize`` (in a child process:
    a crash is an error here, not the end of this one); returns ``out``. ``threads``: 0 for all cores."""
    _choice(kind, QUANTS, "quantisation")
    if importlib.util.find_spec("llama_cpp") is None:
        raise MissingDependencyError(f"quantising needs {SDIST}", hint="pip install 'jisik[llamacpp]'")
    from jisik.generate.llms.llamacpp_check import check_llamacpp_build

    check_llamacpp_build()
    part = out.with_name(out.name + ".part")
    ftype = f"LLAMA_FTYPE_MOSTLY_{kind.upper()}"
    _run_logged([sys.executable, "-c", _QUANTIZE_CHILD, str(gguf), str(part), ftype, str(threads)],
                out.with_suffix(".log"), part, out, what=f"llama.cpp could not quantise {gguf} to {kind}",
                hint="the log says why; --outtype q8_0 needs no quantiser")
    return out


def _run_logged(command: Sequence[str], log: Path, part: Path, out: Path, *, what: str, hint: str,
                env: dict[str, str] | None = None) -> None:
    """Run a child, its output to ``log``; on success rename ``part`` to ``out``, else quote the log's tail."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as sink:
        result = subprocess.run(list(command), stdout=sink, stderr=subprocess.STDOUT, env=env)
    text = log.read_text(encoding="utf-8", errors="replace")
    if result.returncode != 0 or not part.is_file():
        part.unlink(missing_ok=True)
        status = f"exit {result.returncode}" if result.returncode >= 0 else f"signal {-result.returncode}"
        raise TuningError(f"{what} ({status}; log: {log}):\n{_tail(text, LOG_TAIL)}", hint=hint)
    os.replace(part, out)


# ---------------------------------------------------------------- Ollama


@dataclass(frozen=True)
class ChatFamily:
    """An Ollama Go template equivalent to a family of Hugging Face chat templates, and its stop strings."""

    marker: str  # a string only that family's Jinja template holds
    template: str
    stops: tuple[str, ...]


# Ollama's own templates for these families (github.com/ollama/ollama template/*.gotmpl, docs/template.mdx; Gemma's
# with the blank line Gemma 3's Jinja template puts after the system text). They range over .Messages, where Ollama
# also puts the SYSTEM message (docs/modelfile.mdx: FROM, TEMPLATE, SYSTEM, PARAMETER stop).
FAMILIES = {
    "chatml": ChatFamily("<|im_start|>", "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
                                         "{{ end }}<|im_start|>assistant\n", ("<|im_start|>", "<|im_end|>")),
    "llama3": ChatFamily("<|start_header_id|>", "{{- range .Messages }}<|start_header_id|>{{ .Role }}"
                         "<|end_header_id|>\n\n{{ .Content }}<|eot_id|>\n{{- end }}<|start_header_id|>assistant"
                         "<|end_header_id|>\n\n", ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")),
    # Gemma has no system role: the system text opens the first user turn
    "gemma": ChatFamily("<start_of_turn>", '{{- $system := "" }}\n{{- range .Messages }}\n{{- if eq .Role "system" }}'
                        "\n{{- $system = .Content }}\n{{- continue }}\n"
                        '{{- else if eq .Role "user" }}<start_of_turn>user\n{{- if $system }}\n{{ $system }}\n'
                        '{{ $system = "" }}\n{{- end }}\n{{- else if eq .Role "assistant" }}<start_of_turn>model\n'
                        "{{- end }}\n{{ .Content }}<end_of_turn>\n{{ end }}<start_of_turn>model\n",
                        ("<start_of_turn>", "<end_of_turn>")),
}


def chat_family(chat_template: str | None) -> str | None:
    """The :data:`FAMILIES` name of a Hugging Face (Jinja) chat template, or None for one not known here.

    >>> chat_family("{% for m in messages %}<|im_start|>{{ m['role'] }}\\n{{ m['content'] }}<|im_end|>{% endfor %}")
    'chatml'
    >>> chat_family("{{ bos_token }}{% for m in messages %}<start_of_turn>user ...{% endfor %}"), chat_family(None)
    ('gemma', None)
    """
    if chat_template:
        for name, family in FAMILIES.items():
            if family.marker in chat_template:
                return name
    return None


def ollama_modelfile(gguf: str, *, chat_template: str | None = None, system: str | None = None,
                     num_ctx: int | None = None) -> str:
    """An Ollama Modelfile for the GGUF file ``gguf`` (a path relative to the Modelfile, or absolute): TEMPLATE
    and ``PARAMETER stop`` lines when the chat template is a known family, an optional SYSTEM message.

    >>> print(ollama_modelfile("./model.gguf", chat_template="<|im_start|>...", system="Cite [n]."))
    # Ollama Modelfile written by jisik tune merge: ollama create NAME -f Modelfile
    FROM ./model.gguf
    TEMPLATE \"\"\"{{- range .Messages }}<|im_start|>{{ .Role }}
    {{ .Content }}<|im_end|>
    {{ end }}<|im_start|>assistant
    \"\"\"
    PARAMETER stop "<|im_start|>"
    PARAMETER stop "<|im_end|>"
    SYSTEM \"\"\"Cite [n].\"\"\"
    <BLANKLINE>
    """
    for text, what in ((gguf, "the GGUF path"), (system or "", "the system message")):
        if '"""' in text:
            raise TuningError(f'{what} holds """, which ends a Modelfile string', hint="remove it")
    lines = ["# Ollama Modelfile written by jisik tune merge: ollama create NAME -f Modelfile", f"FROM {gguf}"]
    name = chat_family(chat_template)
    if name is not None:
        family = FAMILIES[name]
        lines.append(f'TEMPLATE """{family.template}"""')
        lines += [f"PARAMETER stop {json.dumps(stop)}" for stop in family.stops]
    else:
        lines.append("# no TEMPLATE: the chat template is not one jisik knows; Ollama falls back to the one "
                     "stored in the GGUF file")
    if num_ctx:
        lines.append(f"PARAMETER num_ctx {int(num_ctx)}")
    if system:
        lines.append(f'SYSTEM """{system}"""')
    return "\n".join(lines) + "\n"


def read_chat_template(model_dir: Path) -> str | None:
    """The chat template saved with a tokenizer (``chat_template.jinja`` or ``tokenizer_config.json``)."""
    if (model_dir / "chat_template.jinja").is_file():
        return (model_dir / "chat_template.jinja").read_text(encoding="utf-8")
    template = _read_json(model_dir / "tokenizer_config.json").get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": "default", "template": ...}, ...]
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    return template if isinstance(template, str) else None


def write_modelfile(gguf: Path, out: Path, *, model_dir: Path | None = None, system: str | None = None,
                    num_ctx: int | None = None) -> Path:
    """Write :func:`ollama_modelfile` for ``gguf`` to ``out``, the chat template read from ``model_dir``."""
    relative = f"./{gguf.name}" if gguf.resolve().parent == out.resolve().parent else str(gguf.resolve())
    template = read_chat_template(model_dir) if model_dir is not None else None
    out.write_text(ollama_modelfile(relative, chat_template=template, system=system, num_ctx=num_ctx),
                   encoding="utf-8")
    return out


# ---------------------------------------------------------------- checks and the whole export


def check_loads(path: Path, backend: str, *, max_tokens: int = 4) -> dict[str, Any]:
    """Load ``path`` in jisik's ``llamacpp`` (a GGUF file) or ``transformers`` (a model folder) backend, as
    ``--llm BACKEND:PATH`` would, and generate ``max_tokens`` tokens greedily; returns the answer."""
    from jisik.generate.llms.base import GenerationOptions, Message
    from jisik.generate.llms.llamacpp import LlamaCppLLM
    from jisik.generate.llms.transformers import TransformersLLM

    llm = LlamaCppLLM(path, context_window=512) if backend == "llamacpp" else TransformersLLM(path)
    try:
        answer = llm.generate([Message("user", "Hello")], GenerationOptions(max_tokens=max_tokens))
    finally:
        if isinstance(llm, LlamaCppLLM):
            llm.close()
    return {"backend": backend, "text": answer.text, "completion_tokens": answer.completion_tokens}


@dataclass
class ExportResult:
    """What :func:`export` wrote, with the seconds each step took and the load checks' answers."""

    merged: Path
    gguf: Path | None = None
    quantized: Path | None = None
    modelfile: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def export(path: Path, *, out: Path | None = None, base: Path | None = None, dtype: str = "auto", gguf: bool = False,
           outtype: str = "auto", quantize_to: str | None = None, modelfile: bool = False, system: str | None = None,
           converter: Path | str | None = None, check: bool = False,
           progress: Callable[[str], None] | None = None) -> ExportResult:
    """Merge the run (or adapter) at ``path`` into ``OUT/merged`` (``out``: default the run folder), then, as
    asked, ``OUT/model.gguf``, ``OUT/model-<quantize_to>.gguf`` and ``OUT/Modelfile`` (for the smallest GGUF);
    ``check`` loads each result in jisik's backends and generates 4 tokens. Recorded in ``run.json``."""
    say = progress or (lambda message: None)
    _choice(outtype, OUTTYPES, "GGUF type")  # bad choices fail before the slow merge
    _choice(quantize_to or QUANTS[0], QUANTS, "quantisation")
    _choice(dtype, DTYPES, "dtype")
    source = locate_adapter(path, base=base)
    folder = Path(out) if out is not None else (source.run or source.adapter.parent)
    if gguf or quantize_to or modelfile:  # before the slow merge, what is missing is said at once
        find_converter(converter)
    if quantize_to is not None and importlib.util.find_spec("llama_cpp") is None:
        raise MissingDependencyError(f"quantising needs {SDIST}", hint="pip install 'jisik[llamacpp]'")
    clock = [time.monotonic()]

    def lap(step: str) -> None:
        clock.append(time.monotonic())
        result.seconds[step] = round(clock[-1] - clock[-2], 3)

    say(f"merging {source.adapter} into {source.base_model}")
    result = ExportResult(merge(path, folder / "merged", base=base, dtype=dtype))
    lap("merge")
    if gguf or quantize_to or modelfile:
        say(f"converting to GGUF ({outtype}) with llama.cpp's converter")
        result.gguf = to_gguf(result.merged, folder / "model.gguf", outtype=outtype, converter=converter)
        lap("gguf")
    if quantize_to is not None and result.gguf is not None:
        say(f"quantising to {quantize_to}")
        result.quantized = quantize(result.gguf, folder / f"model-{quantize_to}.gguf", kind=quantize_to)
        lap("quantize")
    final = result.quantized or result.gguf
    if modelfile and final is not None:
        result.modelfile = write_modelfile(final, folder / "Modelfile", model_dir=result.merged, system=system)
    if check:
        say("checking that the results load and generate")
        result.checks["transformers"] = check_loads(result.merged, "transformers")
        if final is not None:
            result.checks["llamacpp"] = check_loads(final, "llamacpp")
        lap("check")
    if source.run is not None:
        record(source.run, merged=result.merged, gguf=result.gguf, gguf_quantized=result.quantized,
               modelfile=result.modelfile)
    return result


def record(run: Path, **artefacts: Path | None) -> None:
    """Note ``artefacts`` (name -> path) in the run's ``run.json``, relative to the run folder when inside it."""
    manifest = load_manifest(run)
    for name, where in artefacts.items():
        if where is not None:
            try:
                manifest.artefacts[name] = str(where.resolve().relative_to(run.resolve()))
            except ValueError:
                manifest.artefacts[name] = str(where.resolve())
    manifest.save(run)


def _scratch_dir(dest: Path) -> Path:
    """A new empty folder beside ``dest`` (to be renamed there), with the umask's permissions (mkdtemp's 0700
    would hide the model from an Ollama server running as another user)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = dest.with_name(f".{dest.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    scratch.mkdir()
    return scratch


def _replace_dir(new: Path, dest: Path) -> None:
    """Put the folder ``new`` at ``dest``, replacing what is there (the old one is removed after the rename)."""
    if not dest.exists():
        os.replace(new, dest)
        return
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    os.replace(dest, old)
    os.replace(new, dest)
    shutil.rmtree(old, ignore_errors=True)


def _choice(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise TuningError(f"unknown {what} {value!r}", hint=f"choose one of {', '.join(allowed)}")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise TuningError(f"{path} is unreadable: {exc}", hint="restore the file from the training run") from exc
    return value if isinstance(value, dict) else {}


def _tail(text: str, lines: int) -> str:
    """The last ``lines`` non-empty lines of ``text``.

    >>> _tail("a\\n\\nb\\nc\\n", 2)
    'b\\nc'
    """
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])
