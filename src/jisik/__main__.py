"""``python -m jisik``: the same as the ``jisik`` command."""

from jisik.cli import main

if __name__ == "__main__":
    main()
