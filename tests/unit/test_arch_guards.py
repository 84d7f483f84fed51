"""Architecture guards (review cost-aws findings 4, 9, 11, 12, 13): an arm64 tier needs an arm64 app
image, `hosts.ami` matches the tiers' architecture, the single-node Valkey switch is acknowledged."""

from __future__ import annotations

from typing import Any

import pytest

from ladder import engine
from ladder.config import ConfigError

from .plans import plan, stack_values

ARM = ["linux/amd64", "linux/arm64"]


def refusal(stack: str, **overrides: Any) -> str:
    with pytest.raises(ConfigError) as err:
        engine.validate_stack({**stack_values(stack, **overrides), "aws:region": "us-east-1"})
    return str(err.value)


def accepted(stack: str, **overrides: Any) -> None:
    engine.validate_stack({**stack_values(stack, **overrides), "aws:region": "us-east-1"})


# --- finding 4: app.imagePlatforms ---------------------------------------------------------------

@pytest.mark.parametrize(("stack", "overrides", "tier"), [
    ("phase1", {"appTier": {"instanceType": "t4g.medium"}}, "appTier.instanceType: t4g.medium"),
    ("phase3", {"workers": {"instanceType": "t4g.small"}}, "workers.instanceType: t4g.small"),
    ("phase3", {"appTier": {"instanceType": "m7g.large"}}, "appTier.instanceType: m7g.large"),
    ("phase6", {"eks": {"nodeInstanceType": "m7g.xlarge"}}, "eks.nodeInstanceType: m7g.xlarge"),
])
def test_an_arm64_app_image_tier_is_refused_unless_the_image_lists_linux_arm64(stack, overrides, tier):
    found = refusal(stack, **overrides)
    assert f"scaleladder:{tier} pulls app.image for linux/arm64" in found
    assert "scaleladder:app.imagePlatforms" in found and "linux/arm64" in found
    accepted(stack, app={"imagePlatforms": ARM}, **overrides)


def test_the_climbs_kept_hosts_count_too():
    # Phase 6 with climb.keepEc2Tier keeps phase 5's app and worker groups: an arm64 worker type there.
    found = refusal("phase6", workers={"instanceType": "t4g.medium"}, climb={"keepEc2Tier": True})
    assert "scaleladder:workers.instanceType: t4g.medium" in found
    # Phase 2 with climb.keepSingleHost: the VM runs phase 1's type (here an arm64 one).
    found = refusal("phase2", appTier={"instanceType": "t4g.medium"}, climb={"keepSingleHost": True})
    assert "scaleladder:climb.keepSingleHost: t4g.medium" in found


def test_pgbouncer_and_an_arm64_only_image_list():
    # PgBouncer hosts run Ubuntu packages, not the app image: an arm64 PgBouncer needs no arm64 app image.
    accepted("phase3", pgbouncer={"instanceType": "t4g.small"})
    # An image listed as arm64 only refuses the x86 presets' app tiers the other way round.
    found = refusal("phase3", app={"imagePlatforms": ["linux/arm64"]})
    assert "scaleladder:appTier.instanceType: t3.large pulls app.image for linux/amd64" in found
    found = refusal("phase3", app={"imagePlatforms": ["linux/amd64", "linux/amd64"]})
    assert "scaleladder:app.imagePlatforms" in found and "once" in found
    found = refusal("phase3", app={"imagePlatforms": ["linux/s390x"]})
    assert "scaleladder:app.imagePlatforms" in found


def test_the_preset_plans_still_pass():
    assert plan("phase3", app={"imagePlatforms": ARM}, workers={"instanceType": "t4g.small"}).of_type(
        "aws:ec2/launchTemplate:LaunchTemplate")
