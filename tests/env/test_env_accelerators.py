"""The accelerator catalog, name resolution, MIG planning and AWS types."""

from __future__ import annotations

import pytest

import skyward as sky
from skyward.errors import ConfigurationError
from skyward.spec.accelerators import (
    AWS_INSTANCE_TYPES,
    CATALOG,
    aws_instance_types,
    gpu_model_for,
    resolve_accelerator,
    select_aws_instance_type,
)

GUIDE_MODELS = [
    "T4",
    "L4",
    "A10G",
    "L40S",
    "A100",
    "A100-80GB",
    "H100",
    "H200",
    "RTX 4090",
    "RTX 6000 Ada",
]


def test_catalog_holds_the_guides_models_with_their_memory() -> None:
    assert list(CATALOG) == GUIDE_MODELS
    memory = {name: model.memory_gb for name, model in CATALOG.items()}
    assert memory == {
        "T4": 16,
        "L4": 24,
        "A10G": 24,
        "L40S": 48,
        "A100": 40,
        "A100-80GB": 80,
        "H100": 80,
        "H200": 141,
        "RTX 4090": 24,
        "RTX 6000 Ada": 48,
    }


@pytest.mark.parametrize(
    ("written", "name"),
    [
        ("L40S", "L40S"),
        ("l40s", "L40S"),
        ("rtx_4090", "RTX 4090"),
        ("RTX-6000-Ada", "RTX 6000 Ada"),
        ("a100-80gb", "A100-80GB"),
        ("H100 SXM5", "H100"),
    ],
)
def test_names_resolve_however_they_are_written(written: str, name: str) -> None:
    spec = resolve_accelerator(written)
    assert spec is not None
    assert (spec.name, spec.memory_gb, spec.count) == (name, CATALOG[name].memory_gb, 1)


def test_the_three_forms_of_the_guide_give_the_same_spec() -> None:
    def resolved(accelerator: object) -> sky.AcceleratorSpec | None:
        # Verda takes any GPU at spec time; Local would check this machine.
        return sky.ComputePool(
            provider=sky.Verda(), accelerator=accelerator
        ).spec.accelerator

    as_string = resolved("A100")
    as_attribute = resolved(sky.NVIDIA.A100)
    as_call = resolved(sky.AcceleratorSpec.NVIDIA.A100())
    assert (
        as_string
        == as_attribute
        == as_call
        == sky.AcceleratorSpec(name="A100", memory_gb=40)
    )
    assert resolve_accelerator("H100:8") == sky.AcceleratorSpec(
        name="H100", memory_gb=80, count=8
    )


def test_an_unknown_accelerator_lists_close_matches() -> None:
    with pytest.raises(ConfigurationError) as caught:
        sky.ComputePool(accelerator="A1000")
    message = str(caught.value)
    assert "`accelerator`: Unknown accelerator 'A1000'." in message
    assert "Did you mean 'A100' or 'A100-80GB'?" in message
    assert "Known accelerators: T4, L4, A10G, L40S, A100" in message
    with pytest.raises(ConfigurationError, match="Did you mean 'H200' or 'H100'"):
        sky.NVIDIA.B200  # noqa: B018


def test_memory_written_wrongly_names_the_value_and_the_units() -> None:
    with pytest.raises(ConfigurationError) as caught:
        sky.ComputePool(memory="4 gigs")
    assert "cannot read '4 gigs' as a memory size" in str(caught.value)
    assert "MB, GB or TB" in str(caught.value)
    assert sky.ComputePool(memory="4GB").spec.memory == 4096


def test_mig_layout_sets_slots_per_node() -> None:
    accelerator = sky.AcceleratorSpec.NVIDIA.A100(mig=["3g.40gb", "3g.40gb"])
    # 3g.40gb exists only on the 80 GB A100, so that is the GPU meant.
    assert accelerator == sky.AcceleratorSpec(
        name="A100-80GB", memory_gb=80, mig=("3g.40gb", "3g.40gb")
    )
    pool = sky.ComputePool(provider=sky.Verda(), accelerator=accelerator)
    assert (pool.concurrency, pool.total_slots) == (2, 2)
    h100 = sky.NVIDIA.H100(count=2, mig=["4g.40gb", "3g.40gb"])
    pool = sky.ComputePool(provider=sky.Verda(), accelerator=h100, nodes=2)
    assert pool.total_slots == 8
    forty = sky.NVIDIA.A100(mig=["3g.20gb", "4g.20gb"])
    assert (forty.name, [p.memory_gb for p in forty.mig_profiles()]) == (
        "A100",
        [20, 20],
    )


def test_a_profile_the_gpu_does_not_have_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError) as caught:
        sky.NVIDIA.H100(mig=["3g.20gb"])
    assert str(caught.value) == (
        "MIG profile '3g.20gb' does not exist on H100 (80 GB). Profiles of H100: "
        "1g.10gb, 1g.10gb+me, 1g.20gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb."
    )
    with pytest.raises(ConfigurationError, match="L40S GPUs cannot be split with MIG"):
        sky.NVIDIA.L40S(mig=["1g.10gb"])


def test_a_layout_that_does_not_fit_one_gpu_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="needs 8 of 7 compute slices"):
        sky.NVIDIA.H200(mig=["4g.71gb", "4g.71gb"])
    with pytest.raises(ConfigurationError, match="concurrency=3 does not match"):
        sky.ComputePool(
            provider=sky.Verda(),
            accelerator=sky.NVIDIA.H100(mig=["3g.40gb", "3g.40gb"]),
            concurrency=3,
        )


def test_local_runs_without_a_gpu_it_lacks_and_reports_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    if sky.Local().available_instances()[0].accelerator == "H200":
        pytest.skip("this machine has an H200")

    @sky.compute
    def seen() -> tuple[str | None, int, float, list[str]]:
        info = sky.instance_info()
        return (
            info.accelerator,
            info.accelerator_count,
            info.accelerator_memory_gb,
            info.devices,
        )

    layout = sky.NVIDIA.H200(mig=["3g.71gb", "3g.71gb"])
    with caplog.at_level("INFO", logger="skyward"):
        pool = sky.ComputePool(accelerator=layout)
    assert "the MIG layout ['3g.71gb', '3g.71gb'] is not created" in caplog.text
    assert "This machine has no 1 x H200" in caplog.text
    with pool:
        assert pool.total_slots == 2
        assert seen() >> pool == (None, 0, 0.0, [])


def test_every_catalog_gpu_but_workstation_cards_has_aws_types() -> None:
    for name in GUIDE_MODELS:
        types = aws_instance_types(name)
        if name.startswith("RTX"):
            assert types == []
        else:
            assert types and all(t.accelerator == name for t in types)
    (t4_quad,) = [t for t in aws_instance_types("T4") if t.accelerator_count == 4]
    assert (t4_quad.name, t4_quad.vcpus, t4_quad.memory_gib) == (
        "g4dn.12xlarge",
        48,
        192,
    )
    assert {t.name for t in aws_instance_types("H200")} == {
        "p5e.48xlarge",
        "p5en.48xlarge",
    }


def test_select_aws_instance_type_picks_the_cheapest_fit() -> None:
    assert select_aws_instance_type(None, None, None).name == "t3.medium"
    assert select_aws_instance_type(None, 8, 40 * 1024).name == "r6i.2xlarge"
    l40s = resolve_accelerator("L40S")
    assert select_aws_instance_type(l40s, None, None).name == "g6e.xlarge"
    four_a10g = resolve_accelerator("A10G:4")
    assert select_aws_instance_type(four_a10g, None, None).name == "g5.12xlarge"
    with pytest.raises(ConfigurationError, match="No AWS instance type offers"):
        select_aws_instance_type(resolve_accelerator("RTX 4090"), None, None)
    assert len({t.name for t in AWS_INSTANCE_TYPES}) == len(AWS_INSTANCE_TYPES)


@pytest.mark.parametrize(
    ("device", "memory", "model"),
    [
        ("NVIDIA A100-SXM4-80GB", 80.0, "A100-80GB"),
        ("NVIDIA A100-SXM4-40GB", 40.0, "A100"),
        ("NVIDIA A100 80GB PCIe", 80.0, "A100-80GB"),
        ("NVIDIA H100 80GB HBM3", 80.0, "H100"),
        ("NVIDIA L40S", 45.0, "L40S"),
        ("NVIDIA L4", 22.5, "L4"),
        ("Tesla T4", 15.0, "T4"),
        ("NVIDIA GeForce RTX 4090", 24.0, "RTX 4090"),
        ("NVIDIA RTX 6000 Ada Generation", 48.0, "RTX 6000 Ada"),
        ("NVIDIA H200", 140.4, "H200"),
    ],
)
def test_driver_names_map_to_catalog_models(
    device: str, memory: float, model: str
) -> None:
    found = gpu_model_for(device, memory)
    assert found is not None and found.name == model


def test_unknown_driver_names_stay_unknown() -> None:
    assert gpu_model_for("NVIDIA RTX PRO Server 6000", 96) is None
    assert gpu_model_for("Radeon Pro V520", 8) is None
