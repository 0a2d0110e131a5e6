"""Reference data: a versioned directory format, its Redis store and the in-process snapshot.

Directory format (one directory holds one version; every file must be present, CSV files
may have no rows; UTF-8, header row first):

================  ==========================================================================
file              columns and meaning
================  ==========================================================================
manifest.json     ``{"version": "<string>", "description": "..."}``; version is letters,
                  digits, ``.``, ``_``, ``-``
watchlist.csv     ``list,name,country,severity``: list is UFLPA, OFAC or SEIZURE; severity
                  CRITICAL or HIGH; country ISO-2 or empty (R19, fuzzy name match)
hts_lists.csv     ``list,hts_prefix,origins,note``: list is ADCVD, EXCISE, PGA, CPSC,
                  FORCED_LABOUR, PILL_PRESS or TRADE_ACTION; hts_prefix 2-10 digits; origins
                  ``*`` or ISO-2 codes separated by ``;`` (R05-R09, R20, R21)
value_bands.csv   ``hts6,min_usd_per_kg,max_usd_per_kg,min_usd_per_unit,max_usd_per_unit``;
                  an empty bound is no bound (R12)
reshippers.csv    ``line1,city,postal_code,country``: addresses, hashed at load with
                  :func:`s321.models.address_key` (R18)
seizures.csv      ``kind,line1,city,postal_code,country,name``: kind CONSIGNEE or SELLER;
                  hashed at load with :func:`s321.models.party_key` (R22)
filers.csv        ``filer_code,risk,note``: risk SUSPENDED or HIGH_VIOLATION (R26)
brands.csv        ``brand,reference_price_usd,authorised_sellers``: seller ids separated by
                  ``;`` (R23)
hts_keywords.csv  ``keyword,chapter``: a description keyword and its 2-digit HTS chapter (R11)
================  ==========================================================================

In Redis (:mod:`s321.stores.refdata`) each version lives under its own key set and one
pointer key names the current version, switched with a single SET: readers see the old or
the new version, never a mix. Names and addresses of seizure and reshipper rows are never
stored, only their hashed keys.
"""

from s321.refdata.loader import RefTables, demo_refdata_dir, read_directory
from s321.refdata.snapshot import ReferenceSnapshot

__all__ = ["RefTables", "ReferenceSnapshot", "demo_refdata_dir", "read_directory"]
