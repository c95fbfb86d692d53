"""pytest fixtures that hand the real regtest network to tests (loaded with `-p harness.pytest_plugin`).

The network is session-wide: started once, on first use, and torn down when the session ends.
`realistic_network` is a second one, per module, with interval blocks on the devnet and toxiproxy
between the service and its dependencies; `scaled_network`, per module too, runs the service as API instances
behind nginx and a worker, on PostgreSQL and Redis. A network's run directory (every process's log and data) is
kept when a test that could have used it failed, and the session's summary says where.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from harness.faults import FaultClient
from harness.judge import Judge
from harness.lnd import Lnd
from harness.lnd_client import HarnessLndClient
from harness.network import Network
from harness.purchase import Buyer
from service.domain.states import OrderStatus
from service.starknet.client import StarknetClient

# Starknet closes a block within about 2-9.5 s; the short end keeps the atomicity tests quick.
REALISTIC_BLOCK_TIME_S = 2

_FAILED_TESTS = pytest.StashKey[list[pytest.Item]]()
_KEPT_RUN_DIRS = pytest.StashKey[list[Path]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, object, object]:
    """Remember every test that failed (in setup, call or teardown) so a network keeps its logs."""
    report = yield
    if getattr(report, "failed", False):
        item.config.stash.setdefault(_FAILED_TESTS, []).append(item)
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    for run_dir in config.stash.get(_KEPT_RUN_DIRS, []):
        terminalreporter.write_line(f"regtest run directory kept (logs of every process): {run_dir}")


def _keep_run_dir_if_failed(request: pytest.FixtureRequest, network: Network, module_only: bool) -> None:
    """Keep the run directory when a test failed: of the session, or of this fixture's module."""
    failed = request.config.stash.get(_FAILED_TESTS, [])
    if module_only:
        failed = [item for item in failed if item.path == request.path]
    if failed or network.keep_run_dir:
        network.keep_run_dir = True
        request.config.stash.setdefault(_KEPT_RUN_DIRS, []).append(network.run_dir)


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
        started.keep_run_dir = started.keep_run_dir or bool(failed)
        _keep_run_dir_if_failed(request, started, module_only=False)
        # As lntest checks its invariants at teardown: no test may leave an order for an operator to fix.
        assert not failed, f"orders ended in `failed` (an operator would have to look): {failed}"


@pytest.fixture(scope="module")
def realistic_network(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """A network of this module's own: a block every REALISTIC_BLOCK_TIME_S seconds, and the service
    reaching the devnet RPC and the merchant's lnd only through toxiproxy (`network.faults`)."""
    run_dir: Path = tmp_path_factory.mktemp("regtest-realistic")
    keep = bool(request.config.getoption("--keep-run-dir"))
    with Network(run_dir, keep_run_dir=keep, starknet_block_time=REALISTIC_BLOCK_TIME_S, fault_proxy=True) as started:
        yield started
        _keep_run_dir_if_failed(request, started, module_only=True)


@pytest.fixture(scope="module")
def scaled_network(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """A network of this module's own with the service scaled out: two API instances behind nginx and two
    workers sharing two mint lanes, on the network's PostgreSQL and Redis (`network.service_url` is nginx). No
    toxiproxy; workers taking over each other's orders are tested in tests/atomicity/test_several_workers.py."""
    run_dir: Path = tmp_path_factory.mktemp("regtest-scaled")
    keep = bool(request.config.getoption("--keep-run-dir"))
    with Network(run_dir, keep_run_dir=keep, api_instances=2, workers=2, database="postgres",
                 mint_lanes=2) as started:
        yield started
        failed = orders_in_failed_state(started)
        started.keep_run_dir = started.keep_run_dir or bool(failed)
        _keep_run_dir_if_failed(request, started, module_only=True)
        assert not failed, f"orders ended in `failed` (an operator would have to look): {failed}"


@pytest.fixture
def faults(realistic_network: Network) -> Iterator[FaultClient]:
    """The realistic network's toxiproxy; every toxic removed and every proxy restored after the test."""
    assert realistic_network.faults is not None
    yield realistic_network.faults
    realistic_network.faults.clear()


def orders_in_failed_state(network: Network) -> list[str]:
    if not network.service_processes:
        return []
    return orders_failed(network.database_url)


def orders_failed(database_url: str) -> list[str]:
    """The orders an operator would have to look at, as the service's database has them."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.scalars(text("SELECT id FROM orders WHERE status = :failed"),
                                           {"failed": OrderStatus.FAILED.value}))
    finally:
        engine.dispose()


@contextmanager
def starknet_client(network: Network) -> Iterator[StarknetClient]:
    """A client of the network's vault signing as its operator, as the service's; closed at the end."""
    client = StarknetClient(network.starknet_config())
    try:
        yield client
    finally:
        client.close()


def outside_judge(network: Network, vault: StarknetClient) -> Judge:
    """The judge of the network's purchases from outside the service: the merchant's lnd, the payer's, the vault."""
    return Judge(network.merchant.client(), [network.payer.client()], vault)


@pytest.fixture
def merchant_node(network: Network) -> Lnd:
    return network.merchant


@pytest.fixture
def merchant(network: Network) -> HarnessLndClient:
    return network.merchant.client()


@pytest.fixture
def payer(network: Network) -> HarnessLndClient:
    return network.payer.client()


@pytest.fixture
def router(network: Network) -> HarnessLndClient:
    return network.router.client()


@pytest.fixture(scope="session")
def starknet(network: Network) -> Iterator[StarknetClient]:
    """The service's Starknet client, signing as the vault's operator."""
    with starknet_client(network) as client:
        yield client


@pytest.fixture
def buyer(network: Network) -> Iterator[Buyer]:
    """Buys from the running service and pays from the payer node."""
    assert network.service is not None, "the network was started without the service"
    client = Buyer(network.service.url, network.payer.client())
    yield client
    client.close()
