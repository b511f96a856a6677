"""What a site holds of the directory, and the diff that brings it back in line after a relist.

Pure: the client feeds it etcd's puts and deletes and, after any watch error, compaction,
silent stream or reconnect, a full snapshot at one revision; it answers with the events a
consumer needs (deletes synthesised for keys that vanished meanwhile). It holds only values
the verifier accepted; one refused is counted, and treated as absent (a refused put over an
accepted value withdraws it). A liveness key is reported when it appears and goes, not on
each heartbeat that rewrites it.
"""
import collections
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Tuple, Union

from . import layout
from .signing import Refused


@dataclass(frozen=True)
class Put:
    key: layout.Key
    record: dict
    revision: int


@dataclass(frozen=True)
class Delete:
    key: layout.Key
    revision: int


@dataclass(frozen=True)
class Resynced:
    """The view equals the directory at `revision` (after a list; `reason`: why it relisted)."""
    revision: int
    reason: str


Event = Union[Put, Delete, Resynced]


class View:
    def __init__(self, verify: Callable[[str, bytes], dict], on_refused=None):
        self._verify = verify
        self._on_refused = on_refused or (lambda key, refused: None)
        self.raw: Dict[str, bytes] = {}          # accepted: path -> value as etcd holds it
        self.records: Dict[str, dict] = {}
        self.refused = collections.Counter()     # kind -> count
        self.revision = 0

    def put(self, path: str, raw: bytes, revision: int) -> Optional[Event]:
        self.revision = max(self.revision, revision)
        if self.raw.get(path) == raw:
            return None
        key = layout.parse(path)
        if key is not None and key.kind == "alive" and path in self.raw:
            self.raw[path] = raw     # a heartbeat: liveness is the key's presence, not its value
            return None
        try:
            record = self._verify(path, raw)
        except Refused as refused:
            self.refused[refused.kind] += 1
            self._on_refused(path, refused)
            return self.delete(path, revision)
        self.raw[path], self.records[path] = raw, record
        return Put(key, record, revision)

    def delete(self, path: str, revision: int) -> Optional[Event]:
        self.revision = max(self.revision, revision)
        if self.raw.pop(path, None) is None:
            return None
        del self.records[path]
        return Delete(layout.parse(path), revision)

    def resync(self, snapshot: Iterable[Tuple[str, bytes]], revision: int,
               reason: str) -> List[Event]:
        """Replace what is held by `snapshot` (every path and value at `revision`)."""
        snapshot = dict(snapshot)
        events = [self.delete(path, revision) for path in list(self.raw) if path not in snapshot]
        events += [self.put(path, raw, revision) for path, raw in sorted(snapshot.items())]
        self.revision = revision
        return [e for e in events if e is not None] + [Resynced(revision, reason)]

    def hosts(self) -> Dict[layout.Key, dict]:
        return {layout.parse(p): r for p, r in self.records.items()
                if layout.parse(p).kind == "host"}

    def alive(self) -> List[str]:
        return sorted(layout.parse(p).node for p in self.records
                      if layout.parse(p).kind == "alive")
