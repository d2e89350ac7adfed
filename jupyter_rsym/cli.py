"""``jupyter-rsym``: command-line entry point."""

import argparse
import sys

from .demo import DEFAULT_NOTEBOOK, run_demo


def main(argv=None):
    parser = argparse.ArgumentParser(prog="jupyter-rsym", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="start a loopback jupyter-rsym serve and execute an example notebook against it"
    )
    demo.add_argument("notebook", nargs="?", default=str(DEFAULT_NOTEBOOK))
    demo.add_argument("--output", default=None, help="where to write the executed notebook")
    commands.add_parser(
        "serve",
        add_help=False,
        help="run a classic rpyc server with a token (and TLS): jupyter-rsym serve --help",
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "serve":
        from .remote.server import main as serve

        return serve(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return run_demo(args.notebook, args.output)


if __name__ == "__main__":
    sys.exit(main())
