"""``jisik guard check``: what the guards would find in a text and what each policy would do with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from jisik.cli.app import JsonOption, console, run

guard_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                        help="Guards on input and output: check a text for personal data and injected instructions.")


@guard_app.command("check")
def check(
    text: Annotated[str, typer.Argument(metavar="TEXT", help="the text to check (a question, a passage)")],
    kb: Annotated[Path | None, typer.Option("--kb", envvar="JISIK_KB", metavar="PATH",
                                            help="use this knowledge base's [guard] settings "
                                                 "(default: the built-in ones)")] = None,
    remote: Annotated[bool, typer.Option("--remote", help="as if the LLM were remote (auto policies use "
                                                          "placeholders)")] = False,
    as_json: JsonOption = False,
) -> None:
    """Show detected personal data and instructions, and what each place's policy would do."""

    def body() -> None:
        from jisik.config import CONFIG_FILE, GuardConfig, load_config
        from jisik.guard.base import PLACES
        from jisik.guard.policy import Guard, GuardBlockedError, Placeholders

        config = load_config(kb / CONFIG_FILE).guard if kb is not None else GuardConfig()
        guard = Guard(config, remote_llm=remote)
        entities = guard.entities([text])[0]
        from jisik.guard.injection import detect_injection, neutralize

        findings = detect_injection(text) if config.injection else []
        places: dict[str, Any] = {}
        for place in PLACES:
            try:
                places[place] = guard.apply(text, entities, place, Placeholders())
            except GuardBlockedError as exc:
                places[place] = f"blocked: {exc.message}"
        result = {"entities": [{**e.to_dict(), "action": {p: guard.action(e.type, p) for p in PLACES}}
                               for e in entities],
                  "injection": [f.to_dict() for f in findings],
                  "neutralized": neutralize(text, findings) if findings else None, "places": places}
        if as_json:
            console.print_json(json.dumps(result, ensure_ascii=False))
            return
        if not entities and not findings:
            console.print("nothing found: every policy passes this text unchanged", markup=False)
            return
        for entity in entities:
            actions = ", ".join(f"{p} {guard.action(entity.type, p)}" for p in PLACES)
            console.print(f"{entity.type} at {entity.start}-{entity.end} (score {entity.score:.2f}"
                          f"{'; ' + entity.reason if entity.reason else ''}): {actions}", markup=False,
                          highlight=False)
        for finding in findings:
            console.print(f"instruction ({finding.kind}) at {finding.start}-{finding.end}, score {finding.score:.2f}",
                          markup=False, highlight=False)
        for where, shown in places.items():
            console.print(f"{where:>8}: {shown}", markup=False, highlight=False)

    run(body)
