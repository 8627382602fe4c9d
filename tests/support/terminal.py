"""A person at a terminal, for driving ``ebr console``: the command runs in a pseudo-terminal
(pexpect) and its output is rendered by a terminal emulator (pyte), so tests read the screen
as it is shown, not prompt_toolkit's escape sequences."""

from __future__ import annotations

import os
import re
import sys
import time

import pexpect
import pyte

ROWS, COLUMNS = 50, 160


class Terminal:
    def __init__(self, *args: str, timeout: float = 30) -> None:
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self.stream = pyte.Stream(self.screen)
        # No cursor-position requests: nothing on this side of the terminal would answer them.
        env = {**os.environ, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "NO_COLOR": "1"}
        self.child = pexpect.spawn(sys.executable, ["-m", "ebr.cli", *args], env=env,
                                   encoding="utf-8", dimensions=(ROWS, COLUMNS), timeout=timeout)
        self.timeout = timeout

    @property
    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    @property
    def text(self) -> str:
        return "\n".join(line for line in self.lines if line)

    def send(self, keys: str) -> None:
        self.child.send(keys)

    def wait_for(self, pattern: str) -> re.Match[str]:
        """Reads output until the screen shows ``pattern`` (a regular expression)."""
        deadline = time.monotonic() + self.timeout
        while True:
            found = re.search(pattern, self.text, re.MULTILINE)
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not on the screen:\n{self.text}")
            try:
                self.stream.feed(self.child.read_nonblocking(65536, timeout=0.2))
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                if not re.search(pattern, self.text, re.MULTILINE):
                    raise AssertionError(f"the console ended; {pattern!r} not on the screen:\n"
                                         f"{self.text}") from None

    def clear(self) -> None:
        """Forgets what the screen shows (so the next wait sees only new output)."""
        self.screen.reset()

    def ended(self) -> int:
        self.child.expect(pexpect.EOF, timeout=self.timeout)
        self.child.close()
        return int(self.child.exitstatus or 0)

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)
