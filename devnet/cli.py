"""The `rollup` command: one entry point, one subcommand per service or developer task."""

from __future__ import annotations

import sys
from collections.abc import Callable

from contracts.keccak import use_pysha3

USAGE = """usage: rollup <command> [options]

commands:
  l1         run the embedded L1 (JSON-RPC over py-evm)
  deploy     deploy the contracts to an L1 and write the deployment file
  sequencer  run a sequencer node
  watcher    run a watcher (derives from L1, proves fraud)
  oracle     run an oracle committee's price feed
  liquidator run a liquidation bot
  trade      trade on a sequencer: orders, cancels, account, book, deposits, withdrawals
  devnet     run a whole network on this machine until Ctrl-C
             (`rollup devnet restart NAME --workdir DIR` restarts one of its services)
  demo       run the end-to-end story and print one JSON line
  bench      run the benchmarks and print one JSON line

`rollup <command> --help` for each command's options.
"""


def _l1(argv: list[str]) -> None:
    from devnet.l1node import main

    main(argv)


def _deploy(argv: list[str]) -> None:
    from devnet.orchestrator import deploy_main

    deploy_main(argv)


def _sequencer(argv: list[str]) -> None:
    from sequencer.main import main

    main(argv)


def _watcher(argv: list[str]) -> None:
    from prover.main import main

    main(argv)


def _oracle(argv: list[str]) -> None:
    from sequencer.oracle_feed import main

    main(argv)


def _liquidator(argv: list[str]) -> None:
    from sequencer.liquidator import main

    main(argv)


def _trade(argv: list[str]) -> None:
    from sequencer.trade_cli import main

    main(argv)


def _devnet(argv: list[str]) -> None:
    from devnet.orchestrator import devnet_main

    devnet_main(argv)


def _demo(argv: list[str]) -> None:
    from devnet.demo import main

    main(argv)


def _bench(argv: list[str]) -> None:
    from devnet.bench import main

    main(argv)


COMMANDS: dict[str, Callable[[list[str]], None]] = {
    "l1": _l1,
    "deploy": _deploy,
    "sequencer": _sequencer,
    "watcher": _watcher,
    "oracle": _oracle,
    "trade": _trade,
    "liquidator": _liquidator,
    "devnet": _devnet,
    "demo": _demo,
    "bench": _bench,
}


def main(argv: list[str] | None = None) -> None:
    """Dispatch `rollup <command> ...`."""
    use_pysha3()
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help", "help"}:
        print(USAGE)
        return
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"rollup: unknown command {args[0]!r}\n\n{USAGE}", file=sys.stderr)
        raise SystemExit(2)
    command(args[1:])


if __name__ == "__main__":
    main()
