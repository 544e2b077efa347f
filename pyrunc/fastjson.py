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
    """Parse a JSON document (str or bytes); ValueError with the position on bad input."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8-sig" if text[:3] == b"\xef\xbb\xbf" else "utf-8")
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as e:
        raise ValueError(f"expecting a value at char {e.value}") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"extra data at char {end}")
    return value


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
