"""How values reach the second tier (SQLite, Redis).

In memory (L1) a value is the Python object itself: a hit returns the object
the loader returned, not a copy. Only a namespace with a second tier encodes
its values, once per load or put, with the namespace's codec:

``pickle`` (default)
    Any picklable object. Only read a tier written by processes you trust:
    unpickling runs code chosen by whoever wrote the bytes.
``json``
    dicts, lists, str, int, float, bool and None, as compact UTF-8 JSON.
    Safe to share; tuples come back as lists.
``bytes``
    ``bytes`` values stored as they are (for already-serialised data, e.g.
    Telegram TL objects: see :mod:`callcache.telethon`).

Choose per namespace in the configuration (``python.namespaces.<ns>.codec``)
or pass any object with ``name``, ``dumps(obj) -> bytes`` and
``loads(bytes) -> obj`` as ``Engine(codecs={"ns": codec})``.
"""

import json
import pickle
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Codec:
    name: str
    dumps: Callable[[Any], bytes]
    loads: Callable[[bytes], Any]


def _json_dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _bytes_dumps(obj):
    if not isinstance(obj, (bytes, bytearray, memoryview)):
        raise TypeError(f"the bytes codec stores bytes, got {type(obj).__name__}")
    return bytes(obj)


PICKLE = Codec("pickle", lambda obj: pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), pickle.loads)
JSON = Codec("json", _json_dumps, json.loads)
BYTES = Codec("bytes", _bytes_dumps, bytes)

BY_NAME = {c.name: c for c in (PICKLE, JSON, BYTES)}


def resolve(codec):
    """A Codec from a name or any object with name/dumps/loads."""
    if isinstance(codec, str):
        try:
            return BY_NAME[codec]
        except KeyError:
            raise ValueError(f"unknown codec {codec!r} (expected one of {', '.join(BY_NAME)})") from None
    for attr in ("name", "dumps", "loads"):
        if not hasattr(codec, attr):
            raise TypeError(f"a codec needs name, dumps and loads; {codec!r} has no {attr}")
    return codec
