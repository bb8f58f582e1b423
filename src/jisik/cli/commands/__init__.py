"""The ``jisik`` commands, one module per area; :mod:`jisik.cli` registers them on the app in help order.

Each module imports the shared helpers of :mod:`jisik.cli.app` and the library (lazily, inside the
command, so ``jisik --help`` stays fast); no command module imports another.
"""
