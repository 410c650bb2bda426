"""available_instances(): AWS against moto's server, Verda and Vast.ai fakes."""

from __future__ import annotations

import os

import pytest
from env_fakes import fake_vast, fake_verda

import skyward as sky
from skyward.errors import (
    ConfigurationError,
    MissingCredentialsError,
    ProviderAPIError,
)
from skyward.infra.discovery import aws_available_instances


def test_aws_lists_ec2_types_with_gpus_and_prices_from_moto(
    moto_endpoint: str, aws_test_credentials: None
) -> None:
    instances = aws_available_instances("us-east-1", endpoint_url=moto_endpoint)
    by_name = {i.name: i for i in instances}
    assert len(by_name) == len(instances) > 500
    assert by_name["g6e.xlarge"] == sky.InstanceSpec(
        name="g6e.xlarge",
        vcpus=4,
        memory_gb=32.0,
        accelerator="L40S",
        accelerator_count=1,
        accelerator_memory_gb=44.7,
        price_on_demand=1.861,
        price_spot=0.00001,  # what moto reports for every spot price
        region="us-east-1",
        provider="aws",
    )
    p4de = by_name["p4de.24xlarge"]
    assert (p4de.accelerator, p4de.accelerator_count) == ("A100-80GB", 8)
    assert by_name["p4d.24xlarge"].accelerator == "A100"
    assert by_name["t3.medium"].Accelerator is None
    assert by_name["t3.medium"].price_on_demand == 0.0416
    gpus = {i.accelerator for i in instances if i.accelerator}
    assert {"T4", "L4", "A10G", "L40S", "A100", "H100"} <= gpus


def test_aws_outside_us_east_1_reports_no_borrowed_on_demand_price(
    moto_endpoint: str, aws_test_credentials: None
) -> None:
    instances = aws_available_instances("eu-west-1", endpoint_url=moto_endpoint)
    g5 = next(i for i in instances if i.name == "g5.xlarge")
    assert (g5.region, g5.price_on_demand, g5.price_spot) == (
        "eu-west-1",
        None,
        0.00001,
    )


def test_aws_without_credentials_says_what_to_set(
    moto_endpoint: str, no_provider_credentials: None
) -> None:
    with pytest.raises(MissingCredentialsError, match="AWS_ACCESS_KEY_ID"):
        aws_available_instances("us-east-1", endpoint_url=moto_endpoint)


def test_aws_unreachable_endpoint_is_a_provider_error(
    aws_test_credentials: None,
) -> None:
    from env_helpers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ProviderAPIError, match="Could not reach EC2 in us-east-1"):
        aws_available_instances("us-east-1", endpoint_url=url)


def test_local_lists_this_machine() -> None:
    (machine,) = sky.Local().available_instances()
    assert machine.vcpus == os.cpu_count()
    assert machine.memory_gb > 0
    assert machine.price_on_demand == 0.0
    assert machine.provider == "local" and machine.region == "local"


def test_verda_lists_instance_types_with_prices_and_locations(
    no_provider_credentials: None,
) -> None:
    with fake_verda("my-id", "my-secret") as api:
        verda = sky.Verda(client_id="my-id", client_secret="my-secret", api_url=api.url)
        instances = verda.available_instances()
    l40s, h100, cpu = instances
    assert l40s == sky.InstanceSpec(
        name="1L40S.20V",
        vcpus=20,
        memory_gb=60,
        accelerator="L40S",
        accelerator_count=1,
        accelerator_memory_gb=48,
        price_on_demand=1.10,
        price_spot=0.39,
        region="FIN-01,ICE-01",
        provider="verda",
    )
    assert (h100.accelerator, h100.accelerator_count) == ("H100", 8)
    assert (h100.accelerator_memory_gb, h100.price_spot, h100.region) == (80, 9.6, "")
    assert (cpu.accelerator, cpu.price_spot, cpu.region) == (None, 0.0112, "FIN-01")
    token_request = api.requests[0]
    assert token_request[:2] == ("POST", "/v1/oauth2/token")
    assert token_request[2]["grant_type"] == "client_credentials"


def test_verda_reads_credentials_from_the_environment(
    no_provider_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_verda("env-id", "env-secret") as api:
        monkeypatch.setenv("VERDA_CLIENT_ID", "env-id")
        monkeypatch.setenv("VERDA_CLIENT_SECRET", "env-secret")
        monkeypatch.setenv("VERDA_API_URL", api.url)
        assert len(sky.Verda().available_instances()) == 3


def test_verda_wrong_credentials_and_missing_ones(
    no_provider_credentials: None,
) -> None:
    with pytest.raises(MissingCredentialsError, match="VERDA_CLIENT_ID"):
        sky.Verda().available_instances()
    with fake_verda("my-id", "my-secret") as api:
        verda = sky.Verda(client_id="my-id", client_secret="wrong", api_url=api.url)
        with pytest.raises(ProviderAPIError) as caught:
            verda.available_instances()
    assert caught.value.status == 401
    assert "Invalid client credentials" in str(caught.value)
    assert "wrong" not in repr(verda) and "wrong" not in str(verda.describe())


def test_vastai_searches_offers_with_its_filters(no_provider_credentials: None) -> None:
    with fake_vast("vast-key") as api:
        vast = sky.VastAI(
            api_key="vast-key",
            geolocation="US",
            min_reliability=0.95,
            bid_multiplier=1.3,
            use_overlay=True,
            api_url=api.url,
        )
        (offer,) = vast.available_instances()
    assert offer == sky.InstanceSpec(
        name="2x RTX 4090 (offer 901)",
        vcpus=32,
        memory_gb=125.0,
        accelerator="RTX 4090",
        accelerator_count=2,
        accelerator_memory_gb=24.0,
        price_on_demand=0.82,
        price_spot=0.51,
        region="Texas, US",
        provider="vastai",
    )
    method, path, body = api.requests[0]
    assert (method, path) == ("POST", "/api/v0/bundles/")
    assert body["reliability"] == {"gte": 0.95}
    assert body["geolocation"] == {"in": ["US"]}
    assert body["rentable"] == {"eq": True} and body["type"] == "on-demand"


def test_vastai_retries_a_rate_limit_and_reads_the_key_file(
    no_provider_credentials: None,
) -> None:
    key_file = os.path.expanduser("~/.config/vastai/vast_api_key")
    os.makedirs(os.path.dirname(key_file))
    with open(key_file, "w") as handle:
        handle.write("file-key\n")
    with fake_vast("file-key") as api:
        api.fail_next.append((429, "API requests too frequent endpoint threshold=10"))
        offers = sky.VastAI(min_reliability=0.9, api_url=api.url).available_instances()
    assert [o.name for o in offers] == [
        "1x RTX 4090 (offer 902)",
        "2x RTX 4090 (offer 901)",
        "1x H100 SXM (offer 903)",
    ]
    assert offers[2].accelerator == "H100"
    assert len(api.requests) == 2


def test_vastai_bad_or_missing_key(no_provider_credentials: None) -> None:
    with pytest.raises(MissingCredentialsError, match="VAST_API_KEY"):
        sky.VastAI().available_instances()
    with fake_vast("right") as api:
        with pytest.raises(ProviderAPIError, match="Invalid user key"):
            sky.VastAI(api_key="wrong", api_url=api.url).available_instances()


@pytest.mark.parametrize("provider", [sky.Verda, sky.VastAI])
def test_pools_on_verda_and_vastai_say_they_are_not_available_yet(
    provider: type[sky.Verda] | type[sky.VastAI],
) -> None:
    pool = sky.ComputePool(provider=provider())
    with pytest.raises(
        ConfigurationError, match=r"not available in this version.*sky\.Local\(\)"
    ):
        pool.open()


def test_a_provider_without_discovery_says_which_have_it() -> None:
    from skyward.infra.base import Provider

    class Bare(Provider):
        kind = "bare"

    with pytest.raises(ConfigurationError, match=r"sky\.AWS\(\), sky\.Verda\(\)"):
        Bare().available_instances()
