"""Commands ``models``, ``info`` and ``predict``."""
from __future__ import annotations

from typing import TYPE_CHECKING

from viz_core.runtime.limits import TOP
from viz_core.cli.common import (
    add_image_args,
    add_model_args,
    add_output_args,
    bounded,
    emit,
    open_images,
    open_model,
)

if TYPE_CHECKING:
    from viz_core.runtime.workbench import Workbench


def register(commands) -> None:
    p = commands.add_parser("models", help="list the built-in models")
    add_output_args(p, needs_out=False)
    p.set_defaults(handler=cmd_models)

    p = commands.add_parser("info", help="describe a model: input, output kind, layers")
    add_model_args(p)
    add_output_args(p, needs_out=False)
    p.set_defaults(handler=cmd_info)

    p = commands.add_parser("predict", help="top classes for images")
    add_model_args(p)
    add_image_args(p)
    p.add_argument("--top", type=bounded(TOP), default=5,
                   help=f"how many classes, {TOP.low} to {TOP.high} (default 5)")
    add_output_args(p, needs_out=False)
    p.set_defaults(handler=cmd_predict)


def cmd_models(args, bench: Workbench | None = None) -> int:
    from viz_core.models.catalog import BUILTIN_MODELS

    rows = [
        {"name": m.name, "title": m.title, "input_shape": [*m.input_size, 3],
         "preprocessing": m.preprocessing, "weights_file": m.weights_file or None}
        for m in BUILTIN_MODELS
    ]
    emit(args, {"models": rows},
         [f"{r['name']:<16} {r['title']}  input {r['input_shape']}" for r in rows])
    return 0


def cmd_info(args, bench: Workbench | None = None) -> int:
    from viz_core.runtime.workbench import Workbench

    model = open_model(bench or Workbench(), args)
    info = model.info
    payload = {
        "name": model.name,
        "title": model.title,
        "input_shape": list(info.input_shape),
        "output_kind": info.output_kind,
        "num_classes": info.num_classes,
        "preprocessing": model.preprocessing,
        "params": info.params,
        "labels": list(model.labels),
        "layers": [
            {"name": layer.path, "type": layer.type,
             "output_shape": [d for d in layer.output_shape], "conv": layer.conv}
            for layer in info.layers
        ],
        "last_conv_layer": info.last_conv_layer,
    }
    lines = [f"{model.title}: input {info.input_shape}, output {info.output_kind} "
             f"({info.num_classes} classes), {info.params:,} weights"]
    lines += [f"  {layer.path:<40} {layer.type:<22} {layer.output_shape}" for layer in info.layers]
    lines.append(f"last conv layer: {info.last_conv_layer}")
    emit(args, payload, lines)
    return 0


def cmd_predict(args, bench: Workbench | None = None) -> int:
    from viz_core.models.predict import predict
    from viz_core.runtime.workbench import Workbench

    bench = bench or Workbench()
    model = open_model(bench, args)
    images = open_images(bench, args.image)
    views = [model.view(img) for img in images]
    results = predict(model, views, top=args.top)
    payload = {"predictions": [
        {"image": path, "top": [
            {"class_index": c.class_index, "label": c.label, "probability": c.probability}
            for c in r.top]}
        for path, r in zip(args.image, results)
    ]}
    lines = []
    for path, r in zip(args.image, results):
        lines.append(path)
        lines += [f"  {c.probability:7.2%}  {c.label} ({c.class_index})" for c in r.top]
    emit(args, payload, lines)
    return 0
