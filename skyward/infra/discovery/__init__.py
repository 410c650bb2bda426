"""Instance discovery: what each cloud offers, as InstanceSpec objects."""

from skyward.infra.discovery.aws import aws_available_instances

__all__ = ["aws_available_instances"]
