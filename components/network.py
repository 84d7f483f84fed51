"""Network: a VPC over `az_count` AZs with one public and one private subnet each,
and NAT (none, one shared, or one per AZ) for the private subnets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from ladder.network import subnet_plan

from .base import Tags, Tier, tagged


@dataclass(frozen=True)
class NetworkArgs:
    cidr: str
    az_count: int
    nat_gateways: Literal["none", "single", "perAz"]
    tags: Tags


class Network(Tier):
    TOKEN = "scaleladder:network:Network"

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        zones = aws.get_availability_zones_output(state="available", opts=pulumi.InvokeOutputOptions(parent=self))
        public_cidrs, private_cidrs = subnet_plan(args.cidr, args.az_count)

        self.vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=args.cidr, enable_dns_hostnames=True,
                               enable_dns_support=True, tags=tagged(args.tags, Name=f"{name}-vpc"), opts=self.child())
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, tags=args.tags, opts=self.child())
        public_rt = aws.ec2.RouteTable(
            f"{name}-public", vpc_id=self.vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags=tagged(args.tags, Name=f"{name}-public"), opts=self.child())

        self.public_subnets: list[aws.ec2.Subnet] = []
        self.private_subnets: list[aws.ec2.Subnet] = []
        for i, (pub, priv) in enumerate(zip(public_cidrs, private_cidrs)):
            az = zones.names[i]
            subnet = aws.ec2.Subnet(f"{name}-public-{i}", vpc_id=self.vpc.id, cidr_block=pub, availability_zone=az,
                                    map_public_ip_on_launch=False,
                                    tags=tagged(args.tags, Name=f"{name}-public-{i}", **{"kubernetes.io/role/elb": "1"}),
                                    opts=self.child())
            aws.ec2.RouteTableAssociation(f"{name}-public-{i}", subnet_id=subnet.id, route_table_id=public_rt.id,
                                          opts=self.child())
            self.public_subnets.append(subnet)
            self.private_subnets.append(aws.ec2.Subnet(
                f"{name}-private-{i}", vpc_id=self.vpc.id, cidr_block=priv, availability_zone=az,
                map_public_ip_on_launch=False,
                tags=tagged(args.tags, Name=f"{name}-private-{i}", **{"kubernetes.io/role/internal-elb": "1"}),
                opts=self.child()))

        nat_ids = self._nat_gateways(name, args)
        # What a host in a private subnet needs before it boots (apt, snap, image pulls): the route
        # tables carrying the NAT route (inline: the provider creates the route in the table's own
        # create/update) and their associations. Groups launching there depend on these resources,
        # not only on the subnets (review aws-phases-1-4 finding 8: the 1 -> 2 climb adds the NAT).
        self.private_egress: list[pulumi.Resource] = []
        for i, subnet in enumerate(self.private_subnets):
            routes = []
            if nat_ids:
                routes = [aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat_ids[min(i, len(nat_ids) - 1)])]
            rt = aws.ec2.RouteTable(f"{name}-private-{i}", vpc_id=self.vpc.id, routes=routes,
                                    tags=tagged(args.tags, Name=f"{name}-private-{i}"), opts=self.child())
            assoc = aws.ec2.RouteTableAssociation(f"{name}-private-{i}", subnet_id=subnet.id, route_table_id=rt.id,
                                                  opts=self.child())
            self.private_egress += [rt, assoc]

        self.vpc_id = self.vpc.id
        self.public_subnet_ids = [s.id for s in self.public_subnets]
        self.private_subnet_ids = [s.id for s in self.private_subnets]
        self.register_outputs({"vpcId": self.vpc_id, "publicSubnetIds": self.public_subnet_ids,
                               "privateSubnetIds": self.private_subnet_ids})

    def _nat_gateways(self, name: str, args: NetworkArgs) -> list[pulumi.Output[str]]:
        count = {"none": 0, "single": 1, "perAz": args.az_count}[args.nat_gateways]
        ids = []
        for i in range(count):
            eip = aws.ec2.Eip(f"{name}-nat-{i}", domain="vpc", tags=args.tags, opts=self.child())
            nat = aws.ec2.NatGateway(f"{name}-nat-{i}", allocation_id=eip.id, subnet_id=self.public_subnets[i].id,
                                     tags=tagged(args.tags, Name=f"{name}-nat-{i}"), opts=self.child())
            ids.append(nat.id)
        return ids
