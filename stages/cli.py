"""What every stage entry point shares: arguments, logging, params, clear failures.

A stage module defines ``main(args)`` and ends with ``run(main, add_arguments)``.
Errors caused by input (``AdvinterpError``) become one line on stderr and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from advinterp.config.core import BaseConfig, DEFAULT_PARAMS, load
from advinterp.errors import AdvinterpError
from advinterp.runtime import configure_threads, seed_everything

log = logging.getLogger("advinterp.stage")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", type=Path, default=DEFAULT_PARAMS, help="params file")
    return p


def setup_base(params: Path) -> BaseConfig:
    """Load ``base``, seed every RNG and set torch's thread count."""
    base = load(BaseConfig, params)
    seed_everything(base.seed)
    configure_threads(base.num_threads)
    return base


def run(
    main: Callable[[argparse.Namespace], None], build: Callable[[], argparse.ArgumentParser]
) -> None:
    """Parse arguments, configure logging, run ``main`` and map input errors to exit 2."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    args = build().parse_args()
    try:
        main(args)
    except AdvinterpError as err:
        log.error("%s", err)
        sys.exit(2)
