"""``python -m jisik.cli``: the same as the ``jisik`` command."""

from jisik.cli import main

main()
