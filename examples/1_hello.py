"""The simplest Skyward example: one function, one pool, one result.

Runs on this machine by default; SKYWARD_PROVIDER=aws runs it on AWS.
"""

import skyward as sky


@sky.compute
def remote_sum(x: int, y: int) -> int:
    print("That's one expensive sum.")
    return x + y


@sky.pool(provider=sky.provider_from_env())
def main():
    result = remote_sum(x=1, y=2) >> sky
    print(result)  # 3


if __name__ == "__main__":
    main()
