#!/bin/bash
# Publishes host memory use (the "memory over 80 %" climb trigger) to CloudWatch every
# minute: EC2 reports CPU by itself but not memory. Dimensioned by Auto Scaling group
# when the host belongs to one, else by instance id.
set -euo pipefail
export PATH="$PATH:/snap/bin"  # aws-cli comes as a snap; systemd's PATH lacks /snap/bin
# shellcheck source=/dev/null
source /etc/scaleladder/boot.env
token=$(curl -fsS -X PUT http://169.254.169.254/latest/api/token -H "X-aws-ec2-metadata-token-ttl-seconds: 300")
iid=$(curl -fsS -H "X-aws-ec2-metadata-token: $token" http://169.254.169.254/latest/meta-data/instance-id)
used=$(awk '/MemTotal/ {t=$2} /MemAvailable/ {a=$2} END {printf "%.1f", (t-a)*100/t}' /proc/meminfo)
if [ -n "${ASG_NAME:-}" ]; then dims="AutoScalingGroupName=${ASG_NAME}"; else dims="InstanceId=${iid}"; fi
aws --region "$REGION" cloudwatch put-metric-data --namespace ScaleLadder/Host \
  --metric-name MemoryUtilization --unit Percent --value "$used" --dimensions "$dims"
