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

One Lua script records a shipment in all its aggregates and reads them back in one round trip
(atomic, so two workers recording into the same person-day both see both). When an aggregate
crosses its limit in either direction because of this shipment, the script returns the *other*
shipments in it: :attr:`Aggregates.affected`, which the correlator re-evaluates so they get a
new decision version.

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
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import redis

from s321.models import Action, CompleteRecord, Party, address_key, party_key
from s321.regime import EASTERN
from s321.rules.aggregates import Aggregates, CrossShipmentLimits

__all__ = ["CrossShipmentStore", "VersionLedger"]

_DAY = 86_400


_LUA = """
local ship = ARGV[1]
local mode = ARGV[2]
local n = tonumber(ARGV[3])
local index = KEYS[1]
local affected, present = {}, {}
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
local wanted = {}
for i = 1, n do wanted[KEYS[1 + i]] = true end
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
  local key = KEYS[1 + i]
  local b = 4 + (i - 1) * 7
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
redis.call('EXPIRE', index, tonumber(ARGV[#ARGV]))
return {out, affected, present}
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


@dataclass(frozen=True, slots=True)
class _Spec:
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
        big = 2**62
        specs: list[_Spec] = []
        consignee: Party | None = (
            (m.consignee if m else None)
            or (e.consignee if e else None)
            or (p.deliver_to if p else None)
        )
        person: Party | None = (p.buyer if p is not None else None) or consignee
        if person is not None:
            specs.append(
                _Spec(
                    "pd",
                    f"{p_}xs:pd:{party_key(person)}:{day}",
                    "sum",
                    record.key,
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
        if seller is not None and consignee is not None:
            w = limits.pair_window_hours * 3600
            specs.append(
                _Spec(
                    "pair",
                    f"{p_}xs:pair:{party_key(seller)}:{party_key(consignee)}",
                    "sum",
                    record.key,
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
                    record.key,
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
        if consignee is not None and consignee.address is not None:
            specs.append(
                _Spec(
                    "ad",
                    f"{p_}xs:ad:{address_key(consignee.address)}:{day}",
                    "distinct",
                    record.key,
                    party_key(consignee),
                    limits.address_day_names,
                    limits.address_day_parcels,
                    0,
                    3 * _DAY,
                )
            )
        if consignee is not None:
            ttl = limits.history_days * _DAY
            specs.append(
                _Spec(
                    "ch",
                    f"{p_}xs:ch:{party_key(consignee)}",
                    "sum",
                    record.key,
                    payload,
                    big,
                    -big,
                    big,
                    ttl,
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
        """:meth:`record_and_read` for each record, in order, in one round trip: the script
        calls are pipelined, and Redis runs each atomically after the one before, so each sees
        the same state as if called alone. Never raises for Redis trouble: a call that failed
        (or all of them, when Redis cannot be reached) gives :meth:`Aggregates.unavailable`."""
        lim = limits or self.limits
        calls: list[tuple[str, list[_Spec], list[Any]]] = []
        for record in records:
            forget = record.manifest is not None and record.manifest.header.action == Action.DELETE
            specs = [] if forget else self._specs(record, lim)
            args: list[Any] = [f"{self._p}xs:ship:{_h(record.key)}", *(s.key for s in specs)]
            args[:0] = [len(args)]
            args += [record.key, "forget" if forget else "record", len(specs)]
            for s in specs:
                args += [s.kind, s.field, s.payload, s.limit, s.lo, s.hi, s.ttl]
            args.append(max([s.ttl for s in specs], default=_DAY))
            calls.append((record.key, specs, args))
        try:
            replies = self._evalsha_all([args for _, _, args in calls])
        except redis.RedisError:
            return [Aggregates.unavailable() for _ in records]
        return [
            Aggregates.unavailable()
            if isinstance(reply, Exception)
            else self._aggregates(specs, reply[0], reply[1], key, reply[2])
            for (key, specs, _), reply in zip(calls, replies, strict=True)
        ]

    def _evalsha_all(self, calls: list[list[Any]]) -> list[Any]:
        """Run the script once per argument list (numkeys, keys, args), pipelined; each reply,
        or the error of a call that failed. When Redis does not know the script (restarted,
        flushed) none of the calls ran: it is loaded and all are sent again."""
        replies: list[Any] = []
        for _ in range(2):
            pipe = self._r.pipeline(transaction=False)
            for args in calls:
                pipe.evalsha(self._script.sha, *args)
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
    (``xs:dv:<hash(shipment)>`` -> ``version|signature``), written before the decision is sent.

    A worker's table state records a shipment's version only after its decisions are
    acknowledged, so a crash in between leaves a state behind what was published; the records
    replayed after it may then decide that version again with other cross-shipment totals,
    and a consumer dropping repeats by decision id would keep the first. The processor reads
    the ledger for the shipments it decides and never gives a version already given to another
    outcome. Redis trouble is never raised: a failed read counts as an empty ledger, a failed
    write as not written."""

    TTL_S = 30 * _DAY

    def __init__(self, client: redis.Redis, prefix: str = "") -> None:
        self._r = client
        self._p = prefix

    def _key(self, shipment: str) -> str:
        return f"{self._p}xs:dv:{_h(shipment)}"

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

    def write(self, entries: dict[str, tuple[int, str]]) -> None:
        """Record each shipment's newest version and signature (one pipelined round trip)."""
        if not entries:
            return
        try:
            pipe = self._r.pipeline(transaction=False)
            for shipment, (version, signature) in entries.items():
                pipe.set(self._key(shipment), f"{version}|{signature}", ex=self.TTL_S)
            pipe.execute()
        except redis.RedisError:
            return
