"""Run several computations at once with gather() and the & operator."""

import skyward as sky


@sky.compute
def process_chunk(data: list[int]) -> int:
    return sum(data)


@sky.compute
def multiply(x: int, y: int) -> int:
    return x * y


@sky.pool(provider=sky.provider_from_env(), allocation="spot-if-available")
def main():
    # Using gather()
    chunks = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    results = sky.gather(*[process_chunk(c) for c in chunks]) >> sky
    print(results)  # (6, 15, 24)

    # Using & operator (type-safe)
    a, b = (multiply(2, 3) & multiply(4, 5)) >> sky
    print(a, b)  # 6, 20


if __name__ == "__main__":
    main()
