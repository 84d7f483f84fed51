"""Loads the price catalog shipped in `ladder/catalog/prices.yaml` (the one source of prices)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

CATALOG_PATH = Path(__file__).parent / "catalog" / "prices.yaml"


@dataclass(frozen=True)
class PriceCatalog:
    currency: str
    regions: dict[str, dict[str, Any]]

    def instance_types(self, region: str, table: str) -> list[str]:
        return sorted(self.regions[region].get(table, {}))


@lru_cache(maxsize=1)
def catalog() -> PriceCatalog:
    data = yaml.safe_load(CATALOG_PATH.read_text())
    return PriceCatalog(currency=data["currency"], regions=data["regions"])
