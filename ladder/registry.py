"""Where the app image comes from and how a host logs in to pull it (pure; one parser).

Three cases, decided from `app.image` and `app.registryCredentialsSecretArn`:

- ECR (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`): the host role may pull that
  one repository; boot.sh logs in with `aws ecr get-login-password` (no stored credential).
  Another account's repository works when its repository policy also allows the host role
  (cross-account pull needs both sides: ECR User Guide, "Private repository policies"; the
  token "can be used to access any Amazon ECR registry that your IAM principal has access
  to", valid 12 hours: ECR API Reference, GetAuthorizationToken);
  another region's works too (login and pull in the registry's region, over NAT, billed as
  inter-region transfer).
- Any other registry with credentials: a Secrets Manager secret {"username", "password"} the
  host role may read; boot.sh pipes the password to `docker login --password-stdin`.
- Any other registry without: an anonymous pull (public images).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ECR User Guide, "Amazon ECR private registry": the registry URL is
# https://aws_account_id.dkr.ecr.region.amazonaws.com. Commercial partition only: the ARNs
# this project writes are arn:aws:... (no .com.cn / GovCloud / FIPS endpoints).
_ECR_HOST = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z]{2}(-[a-z]+)+-\d)\.amazonaws\.com$")
# ECR repository names: lowercase, digits, and . _ - / separators (CreateRepository API,
# repositoryName pattern `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`).
_ECR_REPO = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
# Secrets Manager ARNs: arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 random chars>
# (Secrets Manager User Guide, "Secret ARNs"); names use letters, digits and /_+=.@-.
SECRET_ARN = re.compile(r"^arn:aws:secretsmanager:(?P<region>[a-z]{2}(-[a-z]+)+-\d):\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")

ECR_PULL_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
"""What `docker pull` calls on one repository (ECR User Guide, "Private repository policy
examples": the pull-only statement)."""
ECR_LOGIN_ACTION = "ecr:GetAuthorizationToken"
"""Takes no resource: IAM grants it on "*" only (Service Authorization Reference, Amazon ECR:
GetAuthorizationToken has no resource type), and ECR requires it in an IAM policy before
any pull (ECR User Guide, "Private repository policies")."""

DOCKER_HUB = "docker.io"


@dataclass(frozen=True)
class Ecr:
    account: str
    region: str
    repository: str

    @property
    def registry(self) -> str:
        return f"{self.account}.dkr.ecr.{self.region}.amazonaws.com"

    @property
    def repository_arn(self) -> str:
        return f"arn:aws:ecr:{self.region}:{self.account}:repository/{self.repository}"


def registry_host(image: str) -> str:
    """The registry `docker pull image` talks to (docker's rule: the first path part is a
    registry only when it has a dot or a colon or is `localhost`; else Docker Hub)."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return DOCKER_HUB


def _repository(image: str) -> str:
    """The path after the registry, without :tag or @digest."""
    path = image.partition("/")[2]
    path = path.split("@", 1)[0]
    last = path.rsplit("/", 1)
    if ":" in last[-1]:
        last[-1] = last[-1].split(":", 1)[0]
    return "/".join(last)


def ecr(image: str) -> Ecr | None:
    """The ECR repository `image` lives in, None for other registries; ValueError for a
    reference that names an ECR host it cannot be."""
    host = registry_host(image)
    if ".dkr.ecr." not in host and not host.endswith(".amazonaws.com"):
        return None
    m = _ECR_HOST.match(host)
    if not m:
        raise ValueError(f"{host!r} is not an ECR registry host; ECR images look like "
                         "<12-digit account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>")
    repo = _repository(image)
    if not _ECR_REPO.match(repo) or len(repo) > 256:
        raise ValueError(f"{repo!r} is not an ECR repository name (lowercase letters, digits, . _ - and / separators)")
    return Ecr(m["account"], m["region"], repo)


@dataclass(frozen=True)
class RegistryLogin:
    """What boot.sh needs to log in before `docker pull` (plain values: no secret)."""

    kind: str  # "ecr", "secret" or "none"
    registry: str
    region: str = ""  # ECR: the registry's region; secret: the secret's region
    secret_arn: str = ""

    def boot_env(self) -> dict[str, str]:
        return {"REGISTRY_AUTH": self.kind, "REGISTRY": self.registry, "REGISTRY_REGION": self.region,
                "REGISTRY_SECRET_ARN": self.secret_arn}


def login(image: str, credentials_secret_arn: str | None) -> RegistryLogin:
    """How a host logs in to pull `image` (the config model has refused impossible pairs)."""
    repo = ecr(image)
    if repo is not None:
        return RegistryLogin("ecr", repo.registry, repo.region)
    if credentials_secret_arn:
        m = SECRET_ARN.match(credentials_secret_arn)
        return RegistryLogin("secret", registry_host(image), m["region"] if m else "", credentials_secret_arn)
    return RegistryLogin("none", registry_host(image))


def ecr_statements(image: str) -> list[dict[str, object]]:
    """IAM statements that let a host pull `image` from ECR and nothing else (none for other registries)."""
    repo = ecr(image)
    if repo is None:
        return []
    return [
        {"Sid": "EcrLogin", "Effect": "Allow", "Action": ECR_LOGIN_ACTION, "Resource": "*"},
        {"Sid": "PullAppImage", "Effect": "Allow", "Action": list(ECR_PULL_ACTIONS), "Resource": repo.repository_arn},
    ]

