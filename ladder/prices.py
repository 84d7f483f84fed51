"""Loads the price catalog shipped in `ladder/catalog/prices.yaml` (the one source of prices).

The catalog holds list prices per region and table, the unit of every table, and the
resource types AWS does not charge for. `ladder.cost` turns plans into line items with it;
`ladder.prices_refresh` rebuilds its regions from the AWS Price List API.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

CATALOG_PATH = Path(__file__).parent / "catalog" / "prices.yaml"
REGION_META = ("retrieved", "source")

Tier = tuple[float | None, float]
"""(cumulative monthly upper bound in the table's unit, None = unbounded; USD per unit)."""


@dataclass(frozen=True)
class PriceCatalog:
    currency: str
    regions: dict[str, dict[str, Any]]
    tables: dict[str, dict[str, Any]]
    free: tuple[str, ...] = ()

    def instance_types(self, region: str, table: str) -> list[str]:
        """The keys of a per-type table (instance types, DB classes, node types) in `region`."""
        value = self.regions[region].get(table, {})
        return sorted(value) if isinstance(value, dict) else []

    def price(self, region: str, table: str, key: str | None = None) -> float:
        """USD per unit of `table` in `region`; `key` selects the instance type of a per-type table."""
        if table not in self.tables:
            raise KeyError(f"price table {table!r} is not declared in {CATALOG_PATH.name}")
        value = self.regions[region][table]
        if isinstance(value, list):  # a tiered table: its first (dearest) tier
            return self.tiers(region, table)[0][1]
        if isinstance(value, dict):
            if key not in value:
                raise KeyError(f"{table}: no price for {key!r} in {region}; known: {', '.join(sorted(value))}")
            return float(value[key])
        return float(value)

    def tiers(self, region: str, table: str) -> list[Tier]:
        """The volume tiers of `table` in `region`, cheapest last; a flat table is one unbounded tier.
        AWS applies them to the account's monthly total, so callers price a pooled quantity."""
        value = self.regions[region][table]
        if not isinstance(value, list):
            return [(None, self.price(region, table))]
        out: list[Tier] = [(None if t.get("upto") is None else float(t["upto"]), float(t["usd"])) for t in value]
        bounds = [u for u, _ in out[:-1] if u is not None]
        if not out or out[-1][0] is not None or len(bounds) != len(out) - 1 or bounds != sorted(set(bounds)):
            raise ValueError(f"{CATALOG_PATH.name}: {region}.{table}: tiers need rising `upto` bounds and a last "
                             f"unbounded tier (upto: null); got {value}")
        return out

    def free_per_month(self, table: str) -> float:
        """The always-free monthly allowance of `table` (its `free_per_month`, in the table's unit)."""
        return float(self.tables[table].get("free_per_month") or 0)

    def unit(self, table: str) -> str:
        return self.tables[table]["unit"]

    def is_free(self, resource_type: str) -> bool:
        return any(fnmatchcase(resource_type, pattern) for pattern in self.free)

    def meta(self, region: str) -> dict[str, str]:
        return {k: str(self.regions[region][k]) for k in REGION_META}


def tiered_cost(quantity: float, tiers: list[Tier], free: float = 0.0) -> float:
    """USD for a month's `quantity` through `tiers`, the first `free` units costing nothing: AWS lists
    the free allowance as the ladder's first step ("Up to 100 GB / Month $0.00", then "Next 9.999 TB"),
    so free units take the first positions and every other unit pays the tier its position falls in."""
    cost, low = 0.0, 0.0
    start = min(max(free, 0.0), quantity)
    for upto, usd in tiers:
        high = quantity if upto is None else min(upto, quantity)
        cost += max(0.0, high - max(low, start)) * usd
        if upto is None or upto >= quantity:
            break
        low = upto
    return cost


def parse(data: dict[str, Any]) -> PriceCatalog:
    return PriceCatalog(currency=data["currency"], regions=data["regions"], tables=data.get("tables", {}),
                        free=tuple(data.get("free", ())))


@lru_cache(maxsize=1)
def catalog() -> PriceCatalog:
    return parse(yaml.safe_load(CATALOG_PATH.read_text()))
