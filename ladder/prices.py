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


@dataclass(frozen=True)
class PriceCatalog:
    currency: str
    regions: dict[str, dict[str, Any]]
    tables: dict[str, dict[str, str]]
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
        if isinstance(value, dict):
            if key not in value:
                raise KeyError(f"{table}: no price for {key!r} in {region}; known: {', '.join(sorted(value))}")
            return float(value[key])
        return float(value)

    def unit(self, table: str) -> str:
        return self.tables[table]["unit"]

    def is_free(self, resource_type: str) -> bool:
        return any(fnmatchcase(resource_type, pattern) for pattern in self.free)

    def meta(self, region: str) -> dict[str, str]:
        return {k: str(self.regions[region][k]) for k in REGION_META}


def parse(data: dict[str, Any]) -> PriceCatalog:
    return PriceCatalog(currency=data["currency"], regions=data["regions"], tables=data.get("tables", {}),
                        free=tuple(data.get("free", ())))


@lru_cache(maxsize=1)
def catalog() -> PriceCatalog:
    return parse(yaml.safe_load(CATALOG_PATH.read_text()))
