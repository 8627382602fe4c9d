"""``python -m ebr.cli``: the ``ebr`` command."""

from ebr.cli.main import main

main()
