"""User mistakes: reported as one line on stderr with a non-zero exit, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path


class UserError(Exception):
    """Bad input from the user: the message says what is wrong and what to do."""


def reason(err: BaseException, limit: int = 200) -> str:
    """An exception in one line: `Type: message`, whitespace (newlines included) collapsed."""
    text = " ".join(str(err).split())
    if len(text) > limit:
        text = text[:limit] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


_JSON_TYPES = {dict: "a JSON object", list: "a JSON array", str: "a JSON string", int: "a JSON number",
               float: "a JSON number", bool: "JSON true/false", type(None): "JSON null"}


def read_json(path: str | Path, hint: str, expect: type | None = dict):
    """The JSON document in the file `path`, else a UserError naming the file, what is wrong with it,
    and `hint` (what to do): missing, a folder, binary, empty, truncated, or not of type `expect`."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file ({hint})") from None
    except IsADirectoryError:
        raise UserError(f"{path}: a folder, not a JSON file ({hint})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: binary data, not a JSON file ({hint})") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read it: {err.strerror or reason(err)} ({hint})") from None
    if not text.strip():
        raise UserError(f"{path}: empty, not a JSON file ({hint})")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: truncated or not JSON (line {err.lineno}: {err.msg}) ({hint})") from None
    if expect is not None and not isinstance(doc, expect):
        raise UserError(f"{path}: holds {_JSON_TYPES.get(type(doc), type(doc).__name__)}, not "
                        f"{_JSON_TYPES.get(expect, expect.__name__)} ({hint})")
    return doc
