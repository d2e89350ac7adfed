"""``jupyter-rsym``: command-line entry point."""

import argparse

from .demo import DEFAULT_NOTEBOOK, run_demo


def main(argv=None):
    parser = argparse.ArgumentParser(prog="jupyter-rsym", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="start a loopback rpyc_classic server and execute an example notebook against it"
    )
    demo.add_argument("notebook", nargs="?", default=str(DEFAULT_NOTEBOOK))
    demo.add_argument("--output", default=None, help="where to write the executed notebook")
    args = parser.parse_args(argv)
    if args.command == "demo":
        run_demo(args.notebook, args.output)


if __name__ == "__main__":
    main()
