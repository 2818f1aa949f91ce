"""``python -m prisma_widgets.app``: serve the workshop app; ``panel serve`` on this file serves it too."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m prisma_widgets.app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5006, help="port (default 5006; 0 picks a free one)")
    parser.add_argument("--show", action="store_true", help="open the app in a browser")
    parser.add_argument("--model", default="mouse-vit", help="model shown first (default mouse-vit)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    import panel as pn

    from prisma_widgets.app import build_app

    args = parse_args(argv)
    origins = [f"{args.host}:{args.port}", f"localhost:{args.port}"] if args.port else None
    pn.serve({"/": lambda: build_app(args.model)}, address=args.host, port=args.port, show=args.show,
             title="prisma_widgets workshop", websocket_origin=origins, threaded=False)


if __name__ == "__main__":
    main()
elif __name__.startswith("bokeh_app"):  # panel serve .../prisma_widgets/app/__main__.py
    from prisma_widgets.app import build_app

    build_app().servable(title="prisma_widgets workshop")
