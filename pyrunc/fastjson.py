"""JSON through the C accelerator alone.

`import json` costs about 13 ms here, nearly all of it `re` and `enum`, which json.decoder
and json.encoder import for their pure-Python fallbacks. _json's scanner and encoder need
neither. Every container start parses config.json and writes state, so this pays.
Output matches json.dumps with its default separators.
"""
import _json


class _Context:
    """What _json.make_scanner reads from json.JSONDecoder."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = None

    @staticmethod
    def parse_constant(name):
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


_scan = _json.make_scanner(_Context())
_WHITESPACE = " \t\n\r"


def loads(text):
    """Parse a JSON document (str or bytes); ValueError naming the line and column on bad
    input, whatever way the scanner fails."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = text.decode("utf-8-sig" if text[:3] == b"\xef\xbb\xbf" else "utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"not UTF-8: byte {e.start} (0x{text[e.start]:02x})") from None
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as e:
        raise ValueError(f"expecting a value at {position(text, e.value)}") from None
    except RecursionError:
        raise ValueError(_deep_error(text)) from None
    except (ValueError, SystemError):
        # _json raises json.decoder.JSONDecodeError, importing it on the spot; when that
        # import fails in the scanner (json is not imported on the container path) it
        # returns NULL without an exception: the stdlib parser then says what is wrong
        raise ValueError(_stdlib_error(text)) from None
    rest = text[end:].lstrip(_WHITESPACE)
    if rest:
        raise ValueError(f"extra data at {position(text, len(text) - len(rest))}")
    return value


def position(text, index):
    """'line L column C' (1-based, as editors count) of a character index."""
    line = text.count("\n", 0, index) + 1
    return f"line {line} column {index - (text.rfind(chr(10), 0, index) + 1) + 1}"


MAX_DEPTH = 500  # far below what the scanner's recursion limit allows, far above any config


def _too_deep(text):
    """Where the nesting first goes beyond MAX_DEPTH (brackets inside strings skipped)."""
    depth, in_string, escaped = 0, False, False
    for i, c in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return i
        elif c in "]}":
            depth -= 1
    return len(text)


def _deep_error(text):
    return f"nested too deeply (over {MAX_DEPTH} levels at {position(text, _too_deep(text))})"


def _stdlib_error(text):
    import json  # only on bad input: 13 ms that a valid config never pays
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        return f"{e.msg.removesuffix(' at')} at {position(text, e.pos)}"
    except RecursionError:
        return _deep_error(text)
    return "not valid JSON"


def _unsupported(o):
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


# the same settings as json.dumps' defaults: ASCII output, ", " and ": ", NaN allowed
_encoder = _json.make_encoder(None, _unsupported, _json.encode_basestring_ascii, None,
                              ": ", ", ", False, False, True)


_compact_sorted = _json.make_encoder(None, _unsupported, _json.encode_basestring_ascii, None,
                                     ":", ",", True, False, True)


def dumps(obj):
    return "".join(_encoder(obj, 0))


def dumps_canonical(obj):
    """Sorted keys, no spaces: the same text for the same data, for hashing."""
    return "".join(_compact_sorted(obj, 0))


def dumps_indented(obj, indent="  ", _level=0):
    """Like json.dumps(obj, indent=2), as `runc state` prints."""
    pad, inner = indent * _level, indent * (_level + 1)
    if isinstance(obj, dict) and obj:
        items = (f"{inner}{dumps(str(k))}: {dumps_indented(v, indent, _level + 1)}"
                 for k, v in obj.items())
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(obj, list) and obj:
        items = (f"{inner}{dumps_indented(v, indent, _level + 1)}" for v in obj)
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return dumps(obj)
