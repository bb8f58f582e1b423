"""``jisik tune merge``: fold a run's LoRA adapter into its base model; export GGUF and an Ollama Modelfile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from jisik.cli.app import JsonOption, console, err_console, run
from jisik.tune.export import CONVERTER_ENV, DTYPES, OUTTYPES, QUANTS


def merge(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="a `jisik tune sft|dpo` run folder, or a LoRA "
                                                                "adapter folder")],
    out: Annotated[Path | None, typer.Option(metavar="PATH", help="folder for merged/, model.gguf and Modelfile "
                                                                  "(default: RUN)")] = None,
    base: Annotated[Path | None, typer.Option(metavar="PATH", help="the base model folder (default: the one "
                                                                   "recorded in RUN/run.json)")] = None,
    gguf: Annotated[bool, typer.Option("--gguf", help="also write model.gguf with llama.cpp's converter")] = False,
    outtype: Annotated[str, typer.Option(metavar="TYPE", help=f"GGUF weights: {' | '.join(OUTTYPES)} (auto: bf16 "
                                                              "if the model is, else f16)")] = "auto",
    quantize: Annotated[str | None, typer.Option(metavar="KIND", help=f"also quantise the GGUF: {' | '.join(QUANTS)}"
                                                 )] = None,
    ollama_modelfile: Annotated[bool, typer.Option("--ollama-modelfile", help="also write a Modelfile for "
                                                                              "`ollama create NAME -f Modelfile`")
                                ] = False,
    system: Annotated[str | None, typer.Option(metavar="TEXT", help="the Modelfile's SYSTEM message")] = None,
    converter: Annotated[Path | None, typer.Option(metavar="PATH", envvar=CONVERTER_ENV, show_envvar=False,
                                                   help="a llama.cpp checkout (or llama-cpp-python sdist) holding "
                                                        "convert_hf_to_gguf.py (default: fetched once from the "
                                                        f"installed llama-cpp-python's sdist; ${CONVERTER_ENV})")
                         ] = None,
    dtype: Annotated[str, typer.Option(metavar="DTYPE", help=f"merged weights: {' | '.join(DTYPES)} (auto: the base "
                                                             "model's)")] = "auto",
    check: Annotated[bool, typer.Option("--check", help="load the results in jisik's transformers and llamacpp "
                                                        "backends and generate 4 tokens")] = False,
    as_json: JsonOption = False,
) -> None:
    """Merge a LoRA run into full weights (RUN/merged), optionally a GGUF file, a quantised one and a Modelfile."""

    def body() -> None:
        from jisik.tune.export import export

        def say(message: str) -> None:
            if not as_json:
                err_console.print(f"[dim]{message}…[/]", highlight=False, soft_wrap=True)

        result = export(run_dir, out=out, base=base, dtype=dtype, gguf=gguf, outtype=outtype, quantize_to=quantize,
                        modelfile=ollama_modelfile, system=system, converter=converter, check=check, progress=say)
        if as_json:
            console.print_json(json.dumps(result.to_dict(), ensure_ascii=False))
            return
        final = result.quantized or result.gguf
        console.print(f"merged weights: {result.merged}  (--llm transformers:{result.merged})", highlight=False,
                      soft_wrap=True)
        for label, path in (("GGUF", result.gguf), ("quantised", result.quantized), ("Modelfile", result.modelfile)):
            if path is not None:
                console.print(f"{label}: {path}", highlight=False, soft_wrap=True)
        for backend, answer in result.checks.items():
            console.print(f"{backend} loads it and generates: {answer['text']!r}", highlight=False, soft_wrap=True)
        if final is not None:
            console.print(f'next: jisik ask "…" --kb ./kb --llm llamacpp:{final}', highlight=False, soft_wrap=True)
        if result.modelfile is not None:
            console.print(f"      ollama create NAME -f {result.modelfile}", highlight=False, soft_wrap=True)

    run(body)
