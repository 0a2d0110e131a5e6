"""State across shipments for R03 (person-day), R04 (split lots) and R18 (address-day), in Redis.

Every aggregate is a Redis hash whose *fields are shipment keys* (or, for the bill aggregate,
entry numbers): recording a shipment is ``HSET aggregate shipment contribution``, so a
shipment counts once however often it is seen, a CHANGE replaces its contribution, and a
DELETE removes it. Totals are therefore right across partitions, across workers and after a
crash-replay, with no offsets or dedup tables. A per-shipment index hash remembers which
aggregates a shipment is in, so a CHANGE that moves it (new consignee, new date) takes it out
of the old ones.

===================== ========================================== ===========================
aggregate             key (all parts hashed, never names)        field -> value
===================== ========================================== ===========================
person-day (R03)      ``xs:pd:<party_key>:<YYYYMMDD Eastern>``   shipment -> cents|epoch
seller-consignee R04  ``xs:pair:<seller key>:<consignee key>``   shipment -> cents|epoch
order (R04)           ``xs:ord:<hash(marketplace|order id)>``    shipment -> cents|epoch
bill entries R04/R25  ``xs:b86:<hash(bill)>``                    entry no. -> cents|epoch
address-day (R18)     ``xs:ad:<address_key>:<YYYYMMDD Eastern>`` shipment -> party key
consignee history     ``xs:ch:<party_key>``                      shipment -> cents|epoch
===================== ========================================== ===========================

The seller-consignee pair sums only contributions within ±72 h of this shipment's arrival.

One Lua script records a shipment in all its aggregates and reads them back (atomic, so two
workers recording into the same person-day both see both). A call records a group of
shipments, each after the one before, and a batch's calls go in one round trip. When an
aggregate crosses its limit in either direction because of this shipment, the script returns
the *other* shipments in it: :attr:`Aggregates.affected`, which the correlator re-evaluates so
they get a new decision version.

**Redis down.** :meth:`CrossShipmentStore.record_and_read` returns
:meth:`Aggregates.unavailable` instead of raising. R03, R04 and R18 then fire (hold) with
evidence ``state=unavailable`` rather than wait: waiting would stall the partition behind one
shipment for an outage of unknown length and still need a timeout policy, while a hold is
what the regime asks for when eligibility cannot be shown, is visible to the operator, and is
superseded by a new decision version once the shipment is re-evaluated with Redis back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import redis

from s321.models import Action, CompleteRecord, Party
from s321.regime import EASTERN
from s321.rules.aggregates import Aggregates, CrossShipmentLimits
from s321.rules.facts import Facts

__all__ = ["CrossShipmentStore", "VersionLedger"]

_DAY = 86_400


# One call records a group of shipments, each after the one before. KEYS: per shipment, its
# index hash, then its n aggregates. ARGV: per shipment, its key, the mode (record | forget),
# n, seven per aggregate (kind, field, payload, limit, lo, hi, ttl) and the index's TTL. The
# reply has one entry per shipment: {totals, affected, present}, or false when its recording
# raised an error (caught, so the shipments after it are still recorded).
_LUA = """
local function add_members(key, except, into)
  local fields = redis.call('HKEYS', key)
  for _, f in ipairs(fields) do
    if f ~= except then into[#into + 1] = f end
  end
end
local function parse(v)
  local sep = string.find(v, '|', 1, true)
  if not sep then return 0, 0 end
  return tonumber(string.sub(v, 1, sep - 1)), tonumber(string.sub(v, sep + 1))
end
local function record(kbase, abase)
  local mode = ARGV[abase + 1]
  local n = tonumber(ARGV[abase + 2])
  local index = KEYS[kbase]
  local affected, present = {}, {}
  local wanted = {}
  for i = 1, n do wanted[KEYS[kbase + i]] = true end
  local old = redis.call('HGETALL', index)
  for j = 1, #old, 2 do
    local k, f = old[j], old[j + 1]
    if not wanted[k] or mode == 'forget' then
      if redis.call('HDEL', k, f) == 1 then add_members(k, f, affected) end
      redis.call('HDEL', index, k)
    end
  end
  local out = {}
  if mode == 'forget' then
    redis.call('DEL', index)
    return {out, affected, present}
  end
  for i = 1, n do
    local key = KEYS[kbase + i]
    local b = abase + 3 + (i - 1) * 7
    local kind, field, payload = ARGV[b], ARGV[b + 1], ARGV[b + 2]
    local limit, lo, hi, ttl = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4]),
      tonumber(ARGV[b + 5]), tonumber(ARGV[b + 6])
    local prev = redis.call('HGET', key, field)
    redis.call('HSET', key, field, payload)
    redis.call('EXPIRE', key, ttl)
    redis.call('HSET', index, key, field)
    local all = redis.call('HGETALL', key)
    if kind == 'sum' then
      local total, count, before = 0, 0, 0
      for j = 1, #all, 2 do
        local f = all[j]
        local cents, t = parse(all[j + 1])
        if t >= lo and t <= hi then
          total = total + cents
          count = count + 1
          if f ~= field then before = before + cents end
        end
      end
      if prev then
        local pc, pt = parse(prev)
        if pt >= lo and pt <= hi then before = before + pc end
      end
      local others = before
      if prev then
        local pc, pt = parse(prev)
        if pt >= lo and pt <= hi then others = before - pc end
      end
      if (before > limit) ~= (total > limit) then
        add_members(key, field, affected)
      elseif (others > limit) ~= (total > limit) then
        add_members(key, field, present)
      end
      out[i] = {tostring(total), count, 0}
    else
      local names, count, before_names = {}, 0, {}
      local distinct, bdistinct = 0, 0
      for j = 1, #all, 2 do
        count = count + 1
        local v = all[j + 1]
        if not names[v] then names[v] = true; distinct = distinct + 1 end
        if all[j] ~= field and not before_names[v] then
          before_names[v] = true; bdistinct = bdistinct + 1
        end
      end
      if prev and not before_names[prev] then bdistinct = bdistinct + 1 end
      local bcount = count
      if not prev then bcount = count - 1 end
      local limit2 = lo
      local odistinct, ocount = 0, count - 1
      local seen_other = {}
      for j = 1, #all, 2 do
        local v = all[j + 1]
        if all[j] ~= field and not seen_other[v] then
          seen_other[v] = true; odistinct = odistinct + 1
        end
      end
      if ((bdistinct > limit) ~= (distinct > limit)) or ((bcount > limit2) ~= (count > limit2)) then
        add_members(key, field, affected)
      elseif ((odistinct > limit) ~= (distinct > limit))
          or ((ocount > limit2) ~= (count > limit2)) then
        add_members(key, field, present)
      end
      out[i] = {tostring(count), count, distinct}
    end
  end
  redis.call('EXPIRE', index, tonumber(ARGV[abase + 3 + 7 * n]))
  return {out, affected, present}
end
local replies, kbase, abase = {}, 1, 1
while abase <= #ARGV do
  local n = tonumber(ARGV[abase + 2])
  local ok, reply = pcall(record, kbase, abase)
  replies[#replies + 1] = ok and reply
  kbase = kbase + 1 + n
  abase = abase + 4 + 7 * n
end
return replies
"""


def _h(*parts: str) -> str:
    return hashlib.blake2b("|".join(parts).encode(), digest_size=10).hexdigest()


def _cents(value: Decimal) -> int:
    return int((value * 100).to_integral_value())


def _arrival(record: CompleteRecord) -> datetime | None:
    if record.manifest is not None:
        return record.manifest.arrival
    if record.entry86 is not None:
        return record.entry86.filed_at
    if record.pilot is not None:
        return record.pilot.header.event_time
    return None


def _value(record: CompleteRecord) -> Decimal:
    values = [x.declared_value for x in (record.manifest, record.entry86) if x is not None]
    return max(values) if values else Decimal(0)


def _deleted(record: CompleteRecord) -> bool:
    """Whether the record withdraws the shipment (its manifest's action is DELETE)."""
    return record.manifest is not None and record.manifest.header.action == Action.DELETE


class _Spec(NamedTuple):
    """One aggregate a record goes into (a named tuple: several are built per record). The
    fields from ``kind`` on are the script's arguments for it, in the script's order."""

    name: str
    key: str
    kind: str  # "sum" | "distinct"
    field: str
    payload: str
    limit: int
    lo: int
    hi: int
    ttl: int


class CrossShipmentStore:
    """Records shipments' contributions and reads the aggregates R03, R04 and R18 need."""

    #: records per script call. Redis runs nothing else while a call runs (tens of µs per
    #: record), so a batch is recorded in calls of this many, pipelined in one round trip.
    GROUP = 50

    def __init__(
        self, client: redis.Redis, prefix: str = "", limits: CrossShipmentLimits | None = None
    ) -> None:
        self._r = client
        self._p = prefix
        self.limits = limits or CrossShipmentLimits()
        self._script = client.register_script(_LUA)

    def _specs(self, record: CompleteRecord, limits: CrossShipmentLimits) -> list[_Spec]:
        when = _arrival(record)
        if when is None:
            return []
        epoch = int(when.timestamp())
        day = when.astimezone(EASTERN).strftime("%Y%m%d")
        cents = _cents(_value(record))
        payload = f"{cents}|{epoch}"
        m, p, e = record.manifest, record.pilot, record.entry86
        p_ = self._p
        key = record.key
        big = 2**62
        specs: list[_Spec] = []
        consignee: Party | None = (
            (m.consignee if m else None)
            or (e.consignee if e else None)
            or (p.deliver_to if p else None)
        )
        # party and address keys hash folded text: memoised across records, as the rules do
        ck = Facts.pkey(consignee) if consignee is not None else None
        address = consignee.address if consignee is not None else None
        buyer = p.buyer if p is not None else None
        person = Facts.pkey(buyer) if buyer is not None else ck
        if person is not None:
            specs.append(
                _Spec(
                    "pd",
                    f"{p_}xs:pd:{person}:{day}",
                    "sum",
                    key,
                    payload,
                    _cents(limits.person_day_usd),
                    -big,
                    big,
                    3 * _DAY,
                )
            )
        seller: Party | None = (
            (p.seller if p else None) or (e.shipper if e else None) or (m.shipper if m else None)
        )
        if seller is not None and ck is not None:
            w = limits.pair_window_hours * 3600
            specs.append(
                _Spec(
                    "pair",
                    f"{p_}xs:pair:{Facts.pkey(seller)}:{ck}",
                    "sum",
                    key,
                    payload,
                    _cents(limits.pair_usd),
                    epoch - w,
                    epoch + w,
                    2 * w + 2 * _DAY,
                )
            )
        if p is not None and p.order_id:
            specs.append(
                _Spec(
                    "ord",
                    f"{p_}xs:ord:{_h(p.marketplace or '', p.order_id)}",
                    "sum",
                    key,
                    payload,
                    _cents(limits.pair_usd),
                    -big,
                    big,
                    30 * _DAY,
                )
            )
        if e is not None:
            specs.append(
                _Spec(
                    "b86",
                    f"{p_}xs:b86:{_h(e.bill_number.upper())}",
                    "sum",
                    e.entry_number,
                    payload,
                    big,
                    -big,
                    big,
                    30 * _DAY,
                )
            )
        if ck is not None and address is not None:
            specs.append(
                _Spec(
                    "ad",
                    f"{p_}xs:ad:{Facts.akey(address)}:{day}",
                    "distinct",
                    key,
                    ck,
                    limits.address_day_names,
                    limits.address_day_parcels,
                    0,
                    3 * _DAY,
                )
            )
        if ck is not None:
            specs.append(
                _Spec(
                    "ch",
                    f"{p_}xs:ch:{ck}",
                    "sum",
                    key,
                    payload,
                    big,
                    -big,
                    big,
                    limits.history_days * _DAY,
                )
            )
        return specs

    def record_and_read(
        self, record: CompleteRecord, limits: CrossShipmentLimits | None = None
    ) -> Aggregates:
        """Record this shipment's contributions (idempotently) and return the aggregates.

        A record whose manifest action is DELETE is removed from every aggregate instead.
        Never raises for Redis trouble: returns :meth:`Aggregates.unavailable`.
        """
        [aggregates] = self.record_and_read_many([record], limits)
        return aggregates

    def record_and_read_many(
        self, records: Sequence[CompleteRecord], limits: CrossShipmentLimits | None = None
    ) -> list[Aggregates]:
        """:meth:`record_and_read` for each record, in order, in one round trip: a script call
        records up to :attr:`GROUP` of them, each after the one before, and the calls are
        pipelined, so each record sees the same state as if recorded alone. Never raises for
        Redis trouble: a record whose recording failed (or every record, when Redis cannot be
        reached) gives :meth:`Aggregates.unavailable`."""
        if not records:
            return []
        lim = limits or self.limits
        specs_of = [[] if _deleted(r) else self._specs(r, lim) for r in records]
        starts = range(0, len(records), self.GROUP)
        calls: list[tuple[list[str], list[Any]]] = []
        for start in starts:
            keys: list[str] = []
            argv: list[Any] = []
            end = start + self.GROUP
            for record, specs in zip(records[start:end], specs_of[start:end], strict=True):
                keys.append(f"{self._p}xs:ship:{_h(record.key)}")
                keys += [s.key for s in specs]
                argv += [record.key, "forget" if _deleted(record) else "record", len(specs)]
                for s in specs:
                    argv += s[2:]  # kind, field, payload, limit, lo, hi, ttl
                argv.append(max([s.ttl for s in specs], default=_DAY))
            calls.append((keys, argv))
        try:
            replies = self._evalsha_all(calls)
        except redis.RedisError:
            return [Aggregates.unavailable() for _ in records]
        found: list[Any] = []  # per record: its reply, or None when its recording failed
        for start, reply in zip(starts, replies, strict=True):
            found += (
                [None] * len(records[start : start + self.GROUP])
                if isinstance(reply, Exception)
                else reply
            )
        return [
            self._aggregates(specs, reply[0], reply[1], record.key, reply[2])
            if reply is not None
            else Aggregates.unavailable()
            for record, specs, reply in zip(records, specs_of, found, strict=True)
        ]

    def _evalsha_all(self, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """Run the script once per (keys, args), pipelined; each call's reply, or its error.
        When Redis does not know the script (restarted, flushed) none of the calls ran: it is
        loaded and all are sent again."""
        replies: list[Any] = []
        for _ in range(2):
            pipe = self._r.pipeline(transaction=False)
            for keys, argv in calls:
                pipe.evalsha(self._script.sha, len(keys), *keys, *argv)
            replies = pipe.execute(raise_on_error=False)
            if not all(isinstance(r, redis.exceptions.NoScriptError) for r in replies):
                break
            self._r.script_load(_LUA)
        return replies

    def read(self, record: CompleteRecord, limits: CrossShipmentLimits | None = None) -> Aggregates:
        """The aggregates :meth:`record_and_read` would return, computed without writing
        anything (for inspection, e.g. ``s321 explain``). Never raises for Redis trouble."""
        specs = self._specs(record, limits or self.limits)
        try:
            pipe = self._r.pipeline(transaction=False)
            for spec in specs:
                pipe.hgetall(spec.key)
            rows = pipe.execute()
        except redis.RedisError:
            return Aggregates.unavailable()
        out: list[tuple[str, int, int]] = []
        for spec, raw in zip(specs, rows, strict=True):
            entries = {_s(k): _s(v) for k, v in raw.items()}
            entries[spec.field] = spec.payload
            if spec.kind == "sum":
                total = count = 0
                for v in entries.values():
                    cents, sep, t = v.partition("|")
                    when = int(t) if sep else 0
                    if spec.lo <= when <= spec.hi:
                        total += int(cents) if sep else 0
                        count += 1
                out.append((str(total), count, 0))
            else:
                out.append((str(len(entries)), len(entries), len(set(entries.values()))))
        return self._aggregates(specs, out, (), record.key)

    @staticmethod
    def _aggregates(
        specs: Sequence[_Spec],
        out: Sequence[Any],
        affected: Sequence[Any],
        own: str,
        present: Sequence[Any] = (),
    ) -> Aggregates:
        vals: dict[str, Any] = {}
        for spec, row in zip(specs, out, strict=True):
            total, count, distinct = _s(row[0]), int(row[1]), int(row[2])
            if spec.kind == "sum":
                vals[spec.name] = (Decimal(int(total)) / 100, count)
            else:
                vals[spec.name] = (count, distinct)
        pd, pair, ord_ = vals.get("pd"), vals.get("pair"), vals.get("ord")
        return Aggregates(
            available=True,
            person_day_total=pd[0] if pd else None,
            person_day_count=pd[1] if pd else 0,
            pair_total=pair[0] if pair else None,
            pair_count=pair[1] if pair else 0,
            order_total=ord_[0] if ord_ else None,
            order_count=ord_[1] if ord_ else 0,
            bill_entries=vals["b86"][1] if "b86" in vals else None,
            address_day_parcels=vals["ad"][0] if "ad" in vals else None,
            address_day_names=vals["ad"][1] if "ad" in vals else None,
            consignee_history=vals["ch"][1] if "ch" in vals else None,
            affected=tuple(sorted({_s(a) for a in affected} - {own})),
            affected_by_presence=tuple(sorted({_s(a) for a in present} - {own})),
        )


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class VersionLedger:
    """The newest decision version each shipment was given, and its signature, in Redis
    (``xs:dv:<hash(shipment)>`` -> ``version|signature``), written before the decision is sent;
    and each decision record as sent (``xs:dr:<hash(shipment)>:<version>``) until its batch is
    durable.

    A worker's table state records a shipment's version only after its decisions are
    acknowledged, so a crash in between leaves a state behind the ledger, and whether those
    versions reached the broker is unknown. The records replayed after it may decide with other
    cross-shipment totals. The processor reads the ledger for the shipments it decides, sends
    the records still held again as they were, and never gives a version already given to
    another outcome: a consumer sees every version given, in order, and one content per decision
    id. Records are let go by the next write (their batch is durable by then), when the worker
    stops, or after the ledger's time to live. Redis trouble is never raised: a failed read
    counts as an empty ledger, a failed write as not written."""

    TTL_S = 30 * _DAY

    def __init__(self, client: redis.Redis, prefix: str = "") -> None:
        self._r = client
        self._p = prefix
        self._held: list[str] = []  # the record keys of the last write

    def _key(self, shipment: str) -> str:
        return f"{self._p}xs:dv:{_h(shipment)}"

    def _record_key(self, shipment: str, version: int) -> str:
        return f"{self._p}xs:dr:{_h(shipment)}:{version}"

    def read(self, shipments: Sequence[str]) -> dict[str, tuple[int, str]]:
        """``shipment -> (version, signature)`` for those the ledger knows."""
        if not shipments:
            return {}
        try:
            rows = self._r.mget([self._key(s) for s in shipments])
        except redis.RedisError:
            return {}
        out: dict[str, tuple[int, str]] = {}
        for shipment, raw in zip(shipments, rows, strict=True):
            if raw is not None:
                version, _, signature = _s(raw).partition("|")
                out[shipment] = (int(version), signature)
        return out

    def sent(self, versions: dict[str, range]) -> dict[str, list[tuple[int, bytes]]]:
        """The decision records still held of these shipments' versions, in version order."""
        wanted = [(s, v) for s, vs in versions.items() for v in vs]
        if not wanted:
            return {}
        try:
            rows = self._r.mget([self._record_key(s, v) for s, v in wanted])
        except redis.RedisError:
            return {}
        out: dict[str, list[tuple[int, bytes]]] = {}
        for (shipment, version), raw in zip(wanted, rows, strict=True):
            if isinstance(raw, bytes):  # the client returns bytes (never decoded)
                out.setdefault(shipment, []).append((version, raw))
        return out

    def write(
        self, versions: dict[str, tuple[int, str]], records: dict[tuple[str, int], bytes]
    ) -> None:
        """Record each shipment's newest version and signature, and the decision records about
        to be sent; let go of those the previous write held (one pipelined round trip)."""
        if not versions and not records:
            return
        held = [self._record_key(s, v) for s, v in records]
        try:
            pipe = self._r.pipeline(transaction=False)
            for shipment, (version, signature) in versions.items():
                pipe.set(self._key(shipment), f"{version}|{signature}", ex=self.TTL_S)
            for key, record in zip(held, records.values(), strict=True):
                pipe.set(key, record, ex=self.TTL_S)
            keep = set(held)
            gone = [key for key in self._held if key not in keep]
            if gone:
                pipe.delete(*gone)
            pipe.execute()
        except redis.RedisError:
            return
        self._held = held

    def let_go(self) -> None:
        """Let go of the records the last write held (their decisions were acknowledged)."""
        if not self._held:
            return
        try:
            self._r.delete(*self._held)
        except redis.RedisError:
            return
        self._held = []
