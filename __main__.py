"""scaleladder: read the stack config (validated before any resource), build the phase."""

import pulumi

from components.phase import build
from ladder.config import from_pulumi

for name, value in build(from_pulumi()).items():
    pulumi.export(name, value)
