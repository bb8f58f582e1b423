"""``jisik tune``: fine-tuning commands (data, sft, dpo, reward, sample, merge, classify, embed, report)."""

from __future__ import annotations

import typer

tune_app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                       help="fine-tune models on your own documents: data, sft, dpo, reward, sample, merge, "
                            "classify, embed, report (pip install 'jisik[tune]')")
