"""The console's prompt (prompt_toolkit): history kept in a file across sessions, Enter runs a
complete input and continues one with an open parenthesis on the next line, Tab completes,
Ctrl-C cancels the input being typed (or the query running), Ctrl-D leaves."""

from __future__ import annotations

from pathlib import Path

import platformdirs
from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.styles import Style

from ebr.console.completion import QueryCompleter, QueryLexer, Vocabulary
from ebr.console.session import Session

PROMPT = "ebr> "
CONTINUATION = "...> "
STYLE = Style.from_dict({
    "paren": "#888888", "operator": "bold #5f87ff", "keyword": "#af5fd7", "string": "#5faf5f",
    "number": "#d7875f", "comment": "italic #888888", "command": "bold #00afaf",
})


def default_history() -> Path:
    """The history file under the user's data directory."""
    return platformdirs.user_data_path("ebr") / "console_history"


def _continuation(width: int, line_number: int, is_soft_wrap: int) -> StyleAndTextTuples:
    return [("", CONTINUATION.rjust(width))]


def run(session: Session, history: Path, echo: bool = True) -> None:
    """Read inputs until ``:quit`` or Ctrl-D, printing each reply."""
    history.parent.mkdir(parents=True, exist_ok=True)
    bindings = KeyBindings()

    @bindings.add("enter")
    def _enter(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if Session.is_complete(buffer.text):
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    prompt: PromptSession[str] = PromptSession(
        PROMPT, multiline=True, prompt_continuation=_continuation, key_bindings=bindings,
        history=FileHistory(str(history)), lexer=QueryLexer(), style=STYLE,
        completer=QueryCompleter(Vocabulary(session.searcher.store, session.commands)),
        complete_while_typing=False)
    if echo:
        print(f"index {session.searcher.store.schema.index!r}: :help lists the commands, "
              "Ctrl-D leaves")
    while True:
        try:
            line = prompt.prompt()
        except KeyboardInterrupt:  # cancels the input being typed
            continue
        except EOFError:
            return
        try:
            reply = session.handle(line)
        except KeyboardInterrupt:
            print("cancelled")
            continue
        if reply.text:
            print(reply.text)
        if reply.quit:
            return
