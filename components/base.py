"""What every component shares: the type-token prefix and child options."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

Tags = Mapping[str, str]


class Tier(pulumi.ComponentResource):
    """A ComponentResource whose children are parented to it (`self.child()`)."""

    TOKEN = "scaleladder:tier:Tier"

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TOKEN, name, None, opts)

    def child(self, **kwargs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)


def tagged(tags: Tags, **extra: str) -> dict[str, str]:
    return {**tags, **extra}
