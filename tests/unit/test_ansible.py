"""What the program provides for ansible/ (components/ops.py), and that `ladder ansible-vars`
hands the playbooks exactly what the program renders (the same data, the same image)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ladder import ansible_vars as av
from ladder import engine, pgbouncer, render, userdata
from ladder.templates import render as render_template
from tests.unit.plans import plan, user_data_texts

NEW_IMAGE = "ghcr.io/your-org/your-api:2.0.0"


def _policy(r: engine.Resource) -> dict[str, Any]:
    raw = r.inputs["policy"]
    return json.loads(raw) if isinstance(raw, str) else raw


def _referring(p: engine.Plan, type_: str, bucket_id: str) -> list[engine.Resource]:
    return [r for r in p.of_type(type_) if r.inputs.get("bucket") == bucket_id]


def _transfer_bucket(p: engine.Plan) -> engine.Resource:
    return p.one("aws:s3/bucket:Bucket", "ops-ssm-transfer")


@pytest.mark.parametrize("stack", ["phase1", "phase3"])
def test_transfer_bucket_is_private_encrypted_tls_only_and_short_lived(stack: str) -> None:
    p = plan(stack)
    bucket = _transfer_bucket(p)
    assert p.outputs["ssmTransferBucket"] == bucket.state.get("bucket", bucket.inputs.get("bucket"))
    (pab,) = _referring(p, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket.id)
    assert all(pab.inputs[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                                "restrictPublicBuckets"))
    (owner,) = _referring(p, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", bucket.id)
    assert owner.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    (sse,) = _referring(p, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                        bucket.id)
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    (life,) = _referring(p, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", bucket.id)
    rule = life.inputs["rules"][0]
    assert rule["status"] == "Enabled" and rule["expiration"]["days"] == 1
    # Versioning would keep every transferred file (the aws_ssm plugin's warning): none.
    assert not _referring(p, "aws:s3/bucketVersioning:BucketVersioning", bucket.id)
    (policy,) = _referring(p, "aws:s3/bucketPolicy:BucketPolicy", bucket.id)
    (deny,) = _policy(policy)["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Principal"] == "*" and deny["Action"] == "s3:*"


def test_hosts_get_no_s3_access_and_the_operator_only_this_bucket_and_stack() -> None:
    """The aws_ssm plugin hands hosts presigned URLs: host roles need no S3 permission. The
    operator policy reaches this stack's bucket and instances only."""
    p = plan("phase1")
    bucket = _transfer_bucket(p)
    for r in p.of_type("aws:iam/rolePolicy:RolePolicy"):
        actions = [a for s in _policy(r)["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str)
                                                               else s["Action"])]
        assert not [a for a in actions if a.startswith("s3:")], (r.name, actions)
    op = _policy(p.one("aws:iam/policy:Policy", "ops-ansible-operator"))["Statement"]
    by_sid = {s["Sid"]: s for s in op}
    arn = bucket.state["arn"]
    assert by_sid["TransferObjects"]["Resource"] == f"{arn}/*" and by_sid["TransferBucket"]["Resource"] == arn
    assert by_sid["SessionsToThisStack"]["Condition"] == {
        "StringEquals": {"ssm:resourceTag/project": "scaleladder", "ssm:resourceTag/stack": "phase1"}}
    # "*" only for the two lookups that have no resource-level permissions.
    assert {s["Action"] for s in op if s.get("Resource") == "*"} == {"ec2:DescribeInstances", "ssm:DescribeParameters"}


def _vm(p: engine.Plan) -> engine.Resource:
    (vm,) = [r for r in p.of_type("aws:ec2/instance:Instance") if r.inputs["tags"].get("role") == "app"]
    return vm


def test_a_new_image_changes_the_parameter_not_the_phase1_vm() -> None:
    """Phase 1's VM reads the image at boot from the SSM parameter: a new app.image updates that
    parameter in place and leaves the VM's user data (user_data_replace_on_change) as it is."""
    before, after = plan("phase1"), plan("phase1", app={"image": NEW_IMAGE})
    assert _vm(before).inputs["userDataBase64"] == _vm(after).inputs["userDataBase64"]
    param = [r for r in after.of_type("aws:ssm/parameter:Parameter") if r.name == "ops-app-image"][0]
    assert param.inputs["insecureValue"] == NEW_IMAGE
    boot_env = render.written_files(user_data_texts(after)[_vm(after).name])["/etc/scaleladder/boot.env"]
    assert f"IMAGE_PARAMETER={param.inputs['name']}" in boot_env and "IMAGE=" not in boot_env.replace(
        "IMAGE_PARAMETER=", "")
    # The host may read that parameter, never write it (only pulumi up and deploy.yml do).
    (host,) = [r for r in after.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == "app-host-access"]
    (read,) = [s for s in _policy(host)["Statement"] if s["Action"] == "ssm:GetParameter"]
    assert param.state["arn"] in read["Resource"]
    assert "ssm:PutParameter" not in json.dumps(_policy(host))


def test_a_new_image_still_rolls_an_auto_scaling_group() -> None:
    """Launch templates keep the image inline: there a new image is meant to start a refresh."""
    def app_lt(p: engine.Plan) -> str:
        return p.one("aws:ec2/launchTemplate:LaunchTemplate", "fleet-app").inputs["userData"]

    assert app_lt(plan("phase2")) != app_lt(plan("phase2", app={"image": NEW_IMAGE}))
    assert not [r for r in plan("phase2").of_type("aws:ssm/parameter:Parameter") if r.name == "ops-app-image"]


def test_hosts_carry_the_role_tag_the_inventory_groups_by() -> None:
    assert _vm(plan("phase1")).inputs["tags"]["stack"] == "phase1"
    p3 = plan("phase3")
    roles = {r.name: {s["resourceType"]: s["tags"].get("role") for s in r.inputs["tagSpecifications"]}
             for r in p3.of_type("aws:ec2/launchTemplate:LaunchTemplate")}
    assert roles["fleet-app"]["instance"] == "app" and roles["fleet-workers"]["instance"] == "worker"
    assert roles["pgbouncer"]["instance"] == "pgbouncer"


def test_ansible_vars_render_what_the_program_renders_for_phase1() -> None:
    p = plan("phase1")
    data = av.ansible_vars("phase1", p.config, engine.public(p.outputs))
    files = render.written_files(user_data_texts(p)[_vm(p).name])
    assert render_template("nginx/reverse_proxy.conf.j2", data["reverse_proxy"]) == \
        files["/etc/nginx/conf.d/scaleladder.conf"]
    assert data["deploy"]["in_place"] and data["app"]["image"] == p.config.app.image
    assert data["ssm_transfer_bucket"] == p.outputs["ssmTransferBucket"]
    # configure.yml brings a VM booted before the API-answers probe up to date (review aws finding 8)
    assert data["metrics_publisher_api"] == json.loads(files["/etc/scaleladder/metrics.json"])
    assert "probe" in data["metrics_publisher_api"]


def test_ansible_vars_pgbouncer_ini_is_the_launch_templates() -> None:
    p = plan("phase3")
    data = av.ansible_vars("phase3", p.config, engine.public(p.outputs))
    files = render.written_files(user_data_texts(p)["pgbouncer"])
    assert pgbouncer.render_ini(data["pgbouncer"]) == files["/etc/pgbouncer/pgbouncer.ini"]
    assert not data["deploy"]["in_place"] and "pulumi up" in data["deploy"]["refusal"]


def test_ansible_vars_load_balancer_data_is_the_nginx_lb_hosts() -> None:
    p = plan("phase2", loadBalancer="nginx")
    data = av.ansible_vars("phase2", p.config, engine.public(p.outputs))
    lb = p.one("aws:ec2/instance:Instance", "fleet-nginx-lb")
    assert lb.inputs["tags"]["role"] == "nginx-lb"
    apps = sorted((r for r in p.of_type("aws:ec2/instance:Instance") if r.inputs["tags"].get("role") == "app"),
                  key=lambda r: r.name)
    upstreams = [f"{r.state['privateIp']}:{data['app_host_port']}" for r in apps]
    files = render.written_files(userdata.decode(lb.inputs["userDataBase64"]))
    assert render_template("nginx/load_balancer.conf.j2", {**data["load_balancer"], "upstreams": upstreams}) == \
        files["/etc/nginx/conf.d/scaleladder.conf"]
    assert data["deploy"]["in_place"]  # fixed hosts: deploy.yml rolls them one at a time


def test_climbing_to_phase6_keeps_the_transfer_bucket() -> None:
    """A bucket is stateful to `ladder diff` (a 5->6 climb must lose none): phase 6 keeps the
    transfer bucket and the operator policy, without the image parameter (no EC2 app hosts)."""
    p6 = plan("phase6")
    def urn_in_stack(p: engine.Plan) -> str:  # the URN without the stack name (diff compares them so)
        return _transfer_bucket(p).urn.split("::", 1)[1]

    assert urn_in_stack(p6) == urn_in_stack(plan("phase5"))
    assert not [r for r in p6.of_type("aws:ssm/parameter:Parameter") if r.name == "ops-app-image"]
