"""pytest fixtures that hand the real regtest network to tests (loaded with `-p harness.pytest_plugin`).

The network is session-wide: started once, on first use, and torn down when the session ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from harness.lnd import Lnd
from harness.network import Network
from harness.purchase import Buyer
from service.lightning.lnd_rest import LndRestClient
from service.starknet.client import StarknetClient


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("volta regtest")
    group.addoption("--keep-run-dir", action="store_true", help="keep process logs and data after the run")


@pytest.fixture(scope="session")
def network(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    run_dir: Path = tmp_path_factory.mktemp("regtest")
    keep = bool(request.config.getoption("--keep-run-dir"))
    with Network(run_dir, keep_run_dir=keep) as started:
        yield started
        failed = orders_in_failed_state(started)
        # As lntest checks its invariants at teardown: no test may leave an order for an operator to fix.
        assert not failed, f"orders ended in `failed` (an operator would have to look): {failed}"


def orders_in_failed_state(network: Network) -> list[str]:
    if network.service is None:
        return []
    engine = create_engine(network.service.database_url)
    try:
        with engine.connect() as connection:
            return list(connection.scalars(text("SELECT id FROM orders WHERE status = 'failed'")))
    finally:
        engine.dispose()


@pytest.fixture
def merchant_node(network: Network) -> Lnd:
    return network.merchant


@pytest.fixture
def merchant(network: Network) -> LndRestClient:
    return network.merchant.client()


@pytest.fixture
def payer(network: Network) -> LndRestClient:
    return network.payer.client()


@pytest.fixture
def router(network: Network) -> LndRestClient:
    return network.router.client()


@pytest.fixture(scope="session")
def starknet(network: Network) -> Iterator[StarknetClient]:
    """The service's Starknet client, signing as the vault's operator."""
    client = StarknetClient(network.starknet_config())
    yield client
    client.close()


@pytest.fixture
def buyer(network: Network) -> Iterator[Buyer]:
    """Buys from the running service and pays from the payer node."""
    assert network.service is not None, "the network was started without the service"
    client = Buyer(network.service.url, network.payer.client())
    yield client
    client.close()
