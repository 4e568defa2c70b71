"""Command ``unit``: the arithmetic of one output number of a layer, as lesson mode shows it.

    python -m viz_core unit --model demo --image cat.png --layer conv2d_1 --channel 3 --at 0,0 --json

prints ``{layer, kind, channel, position: [y, x], patch_shape, products_sum, bias,
preactivation, activation, model_activation, terms: [{input, weight, product}]}``: ``terms``
are the (up to 64) largest products by absolute value, ``activation`` is computed from the
printed numbers and ``model_activation`` read from the model
(:func:`viz_core.features.arithmetic.unit_arithmetic`). ``position`` is null for layers with
a vector output (Dense, global pooling, softmax); fields a layer has no use for are null.
"""
from __future__ import annotations

HELP = "the arithmetic of one output number of a layer: patch, kernel, products, sum, bias"
SHOWN_TERMS = 8  # in the plain-text answer


def position_argument(text: str) -> tuple[int, int]:
    """``--at``: ``Y,X``, two whole numbers of 0 or more."""
    from viz_core.errors import ParameterError

    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ParameterError(f"A position is two whole numbers Y,X (row, column) of 0 or more, "
                             f"e.g. 0,12; got {text!r}.")
    return int(parts[0]), int(parts[1])


def channel_argument(text: str) -> int:
    from viz_core.errors import ParameterError

    if not str(text).strip().isdigit():
        raise ParameterError(f"The channel is a whole number of 0 or more; got {text!r}.")
    return int(text)


def register(commands) -> None:
    from viz_core.cli.common import add_image_args, add_model_args, checked

    p = commands.add_parser(
        "unit", help=HELP,
        description="Show how one number of a layer's output is computed from its input: the "
        "patch it reads (padding included), the weights, their products, the sum, the bias, "
        "the activation, and the model's own value to compare.")
    add_model_args(p)
    add_image_args(p)
    p.add_argument("--layer", default=None,
                   help="layer path, e.g. conv2d_1 or vgg16/block1_conv1 (default: the first "
                   "convolution)")
    p.add_argument("--channel", default=0, type=checked(channel_argument, "channel"),
                   help="output channel, or unit of a dense layer (default 0)")
    p.add_argument("--at", default=None, metavar="Y,X", type=checked(position_argument, "Y,X"),
                   help="position in the layer's output map: row,column from 0 (needed for "
                   "layers with a map)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show TensorFlow's and the libraries' own log messages")
    p.set_defaults(handler=cmd_unit)


def describe(result) -> list[str]:
    """The arithmetic as a few lines of text."""
    c = result.contract(SHOWN_TERMS)
    where = "" if c["position"] is None else f" at (y={c['position'][0]}, x={c['position'][1]})"
    lines = [f"{c['layer']} ({c['kind']}) channel {c['channel']}{where}"]
    if getattr(result, "source", None):
        shape = "x".join(str(d) for d in c["patch_shape"])
        padded = getattr(result, "padded", None)
        cells = f", {int(padded.sum())} padding cells" if padded is not None and padded.any() \
            else ""
        lines.append(f"reads {shape} values of {result.source}{cells}")
    for t in c["terms"]:
        lines.append(f"  {t['input']: .6g} × {t['weight']: .6g} = {t['product']: .6g}")
    lines.append(result.equation_text())
    return lines


def cmd_unit(args) -> int:
    from viz_core.cli.common import emit, open_images, open_model
    from viz_core.errors import ParameterError
    from viz_core.features.arithmetic import unit_arithmetic
    from viz_core.runtime.workbench import Workbench

    if len(args.image) != 1:
        raise ParameterError(f"The unit command takes one --image; got {len(args.image)}.")
    bench = Workbench()
    model = open_model(bench, args)
    image = open_images(bench, args.image)[0]
    layer = args.layer or model.info.conv_layers[0]
    result = unit_arithmetic(model, image, layer, args.channel, args.at)
    emit(args, result.contract(), describe(result))
    return 0
