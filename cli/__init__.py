"""ebr.cli: the click app.  Thin: each command builds its inputs and calls the library."""
