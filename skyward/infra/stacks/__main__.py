"""Entry point of ``Pulumi.yaml``: the pool program, from the stack's config.

``pulumi preview --stack NAME`` at the repository root runs this; the
config comes from ``Pulumi.NAME.yaml`` (``pulumi config refresh --stack
NAME`` fetches it from the backend) and the program is the one a pool runs.
"""

from skyward.infra.stacks import program_from_config

program_from_config()
