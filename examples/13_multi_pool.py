"""Provision two pools at once and compare how fast each multiplies matrices.

On a cloud the pools get a T4 and an L4 and jax runs on CUDA. On Local,
both pools share this machine's CPU, so the sizes are small and the
"speedup" is only noise around 1x.
"""

import skyward as sky

provider = sky.provider_from_env()
ON_CLOUD = provider.kind != "local"
SIZE = 2048 if ON_CLOUD else 512
REPS = 100 if ON_CLOUD else 20


@sky.compute
def matmul_bench(size: int) -> float:
    import time

    import jax.numpy as jnp

    x = jnp.ones((size, size))
    (x @ x).block_until_ready()  # warmup

    t0 = time.perf_counter()
    for _ in range(REPS):
        (x @ x).block_until_ready()
    return time.perf_counter() - t0


# CUDA jax on cloud GPUs; the CPU build where nodes share this machine.
image = sky.Image(pip=["jax[cuda12]" if ON_CLOUD else "jax"])

with sky.MultiPool(
    sky.ComputePool(provider=provider, image=image, accelerator="T4"),
    sky.ComputePool(provider=provider, image=image, accelerator="L4"),
) as (t4_pool, l4_pool):
    t_t4, t_l4 = matmul_bench(SIZE) >> t4_pool, matmul_bench(SIZE) >> l4_pool
    print(f"T4: {t_t4:.2f}s | L4: {t_l4:.2f}s | Speedup: {t_t4 / t_l4:.1f}x")
