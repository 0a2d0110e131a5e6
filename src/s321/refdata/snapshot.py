"""The in-process, read-only view of one reference-data version that rules evaluate against.

Built once per version (from a directory or from Redis) and then only read: every lookup is a
dictionary probe or a bounded fuzzy match, with no I/O, so the rules stay pure functions.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz, process, utils

from s321.refdata.loader import Brand, RefTables, ValueBand, WatchEntry, read_directory

__all__ = ["MEMO_LIMIT", "HtsHit", "ReferenceSnapshot", "WatchMatch"]

_CACHE_LIMIT = 50_000
#: Entries a caller's memo (:meth:`ReferenceSnapshot.memo`) keeps before it starts over.
MEMO_LIMIT = _CACHE_LIMIT


@dataclass(frozen=True, slots=True)
class HtsHit:
    """An HTS code found on a list: which list, through which prefix."""

    list: str
    prefix: str


@dataclass(frozen=True, slots=True)
class WatchMatch:
    """A party name that matched a watch-list entry (evidence cites entry_id and score)."""

    entry: WatchEntry
    score: float


class ReferenceSnapshot:
    """Indexes over one :class:`RefTables` version; see the package docstring for the data."""

    def __init__(self, tables: RefTables) -> None:
        self.tables = tables
        self.version = tables.version
        prefixes: dict[str, list[tuple[str, frozenset[str] | None]]] = {}
        for e in tables.hts_lists:
            prefixes.setdefault(e.hts_prefix, []).append((e.list, e.origins))
        self._prefixes = {k: tuple(v) for k, v in prefixes.items()}
        self._lists = frozenset(e.list for e in tables.hts_lists)
        self._hts_cache: dict[tuple[str, str | None], tuple[HtsHit, ...]] = {}
        self._bands = dict(tables.value_bands)
        self._reshippers = tables.reshipper_keys
        self._seizures = tables.seizure_keys
        self._filers = dict(tables.filers)
        self._brands = {b.brand.upper(): b for b in tables.brands}
        # spelled the way description terms are cut: "T-SHIRT" matches the words "T SHIRT"
        self._keywords = {
            " ".join(re.findall(r"[A-Z0-9]+", k.upper())): c for k, c in tables.hts_keywords
        }
        self._watch = tables.watchlist
        self._watch_names = [utils.default_process(e.name) for e in tables.watchlist]
        self._watch_memo: dict[tuple[str, str | None, float, int], tuple[WatchMatch, ...]] = {}
        self._watch_exact: dict[str, list[int]] = {}
        for i, n in enumerate(self._watch_names):
            self._watch_exact.setdefault(n, []).append(i)
        self._list_hits: dict[tuple[str, str | None], dict[str, HtsHit]] = {}
        self._memos: dict[Hashable, dict[Any, Any]] = {}
        # plain attributes, not properties: every evaluation reads several of them
        self.has_bands = bool(self._bands)
        self.has_reshippers = bool(self._reshippers)
        self.has_seizures = bool(self._seizures)
        self.has_filers = bool(self._filers)
        self.has_brands = bool(self._brands)
        self.has_keywords = bool(self._keywords)
        self.has_watchlist = bool(self._watch)

    @classmethod
    def from_directory(cls, directory: Path) -> ReferenceSnapshot:
        """Read, validate and index one reference-data directory."""
        return cls(read_directory(directory))

    @classmethod
    def empty(cls, version: str = "none") -> ReferenceSnapshot:
        """A snapshot with no data: every list-based rule reports not-applicable."""
        return cls(RefTables(version=version, description="empty"))

    # -- HTS lists ---------------------------------------------------------------------------

    def has_list(self, name: str) -> bool:
        """Whether the HTS list ``name`` has any entry (if not, its rule is not applicable)."""
        return name in self._lists

    def hts_hits(self, hts: str, origin: str | None) -> tuple[HtsHit, ...]:
        """Every list entry whose prefix starts ``hts`` and whose origins include ``origin``.

        An unknown origin matches origin-restricted entries: it cannot show it is outside them.
        """
        key = (hts, origin)
        hit = self._hts_cache.get(key)
        if hit is not None:
            return hit
        out: list[HtsHit] = []
        prefixes = self._prefixes
        for n in range(2, min(len(hts), 10) + 1):
            entries = prefixes.get(hts[:n])
            if entries is None:
                continue
            for lst, origins in entries:
                if origins is None or origin is None or origin in origins:
                    out.append(HtsHit(lst, hts[:n]))
        result = tuple(out)
        if len(self._hts_cache) < _CACHE_LIMIT:
            self._hts_cache[key] = result
        return result

    def list_hits(self, hts: str, origin: str | None) -> Mapping[str, HtsHit]:
        """list name -> the first hit of ``hts`` (from ``origin``) on that list; memoised."""
        key = (hts, origin)
        found = self._list_hits.get(key)
        if found is None:
            found = {}
            for h in self.hts_hits(hts, origin):
                found.setdefault(h.list, h)
            if len(self._list_hits) >= _CACHE_LIMIT:
                self._list_hits.clear()
            self._list_hits[key] = found
        return found

    def on_list(self, name: str, hts: str, origin: str | None) -> HtsHit | None:
        """The first hit of ``hts`` (from ``origin``) on list ``name``, or None."""
        return self.list_hits(hts, origin).get(name)

    # -- tables ------------------------------------------------------------------------------

    def band(self, hts6: str) -> ValueBand | None:
        return self._bands.get(hts6)

    def is_reshipper(self, addr_key: str) -> bool:
        """Whether a hashed address (:func:`s321.models.address_key`) is a known reshipper."""
        return addr_key in self._reshippers

    def seized(self, kind: str, key: str) -> bool:
        """Whether a party (:func:`s321.models.party_key`) of ``kind`` has a seizure history."""
        return (kind, key) in self._seizures

    def filer_risk(self, filer_code: str) -> str | None:
        return self._filers.get(filer_code.upper())

    def brands_in(self, terms: Iterable[str]) -> list[Brand]:
        """Protected brands named by any of ``terms`` (upper-case words and word pairs)."""
        brands = self._brands
        return [brands[t] for t in terms if t in brands]

    def keyword_chapters(self, terms: Iterable[str]) -> dict[str, str]:
        """keyword -> HTS chapter for every known keyword among ``terms``."""
        kw = self._keywords
        return {t: kw[t] for t in terms if t in kw}

    # -- memos of derived values -------------------------------------------------------------

    def memo(self, name: Hashable) -> dict[Any, Any]:
        """A dict kept with this snapshot, in which callers memoise values they derive from its
        data (``name`` keeps callers apart; callers bound it by :data:`MEMO_LIMIT`)."""
        found = self._memos.get(name)
        if found is None:
            found = self._memos[name] = {}
        return found

    # -- watch list --------------------------------------------------------------------------

    def watch_matches(
        self, name: str, country: str | None, cutoff: float, limit: int = 3
    ) -> Sequence[WatchMatch]:
        """Watch-list entries whose name matches ``name`` with a score of at least ``cutoff``.

        Scores are rapidfuzz token-sort ratios (0-100) over case- and punctuation-folded
        names. An entry with a country only matches a party from that country or of unknown
        country.
        """
        memo_key = (name, country, cutoff, limit)
        memo = self._watch_memo.get(memo_key)
        if memo is not None:
            return memo
        result = self._watch_matches(name, country, cutoff, limit)
        if len(self._watch_memo) >= _CACHE_LIMIT:
            self._watch_memo.clear()
        self._watch_memo[memo_key] = result
        return result

    def _watch_matches(
        self, name: str, country: str | None, cutoff: float, limit: int
    ) -> tuple[WatchMatch, ...]:
        query = utils.default_process(name)
        if not query:
            return ()
        exact = self._watch_exact.get(query)
        found: list[tuple[int, float]]
        if exact is not None:
            found = [(i, 100.0) for i in exact]
        else:
            found = [
                (i, score)
                for _, score, i in process.extract(
                    query,
                    self._watch_names,
                    scorer=fuzz.token_sort_ratio,
                    processor=None,
                    score_cutoff=cutoff,
                    limit=limit,
                )
            ]
        out = []
        for i, score in found:
            entry = self._watch[i]
            if entry.country and country and entry.country != country:
                continue
            out.append(WatchMatch(entry, float(score)))
        return tuple(out)
