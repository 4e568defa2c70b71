"""Models: which models exist, how each is loaded (an upload only after it is checked), what is
inside it, and the plain uses every technique shares: cuts of its graph, preprocessing, targets,
predictions. Nothing here explains a prediction; the techniques above build on these.

Modules:
    builtin_models    the built-in table: names, titles, sizes, weights (plain data, no Keras)
    loaded            ``LoadedModel``: the model as every technique takes it
    catalog           loading built-ins and uploads as a ``LoadedModel``
    upload_safety     whether an uploaded file may be loaded: the checks before Keras reads it
    in_memory         a Keras model built in a notebook as a ``LoadedModel``
    downloads         ImageNet weights into Keras' cache, with progress and plain errors
    inspect           input, output kind, layers (nested sub-models too), conv layers
    graph             side models: the caller's model with extra outputs, never modified
    preprocess        named input preprocessing, differentiable (``keras.ops``)
    preprocess_names  the preprocessing names and what each does (plain data, no NumPy)
    preprocess_guess  which preprocessing an uploaded model most likely expects
    targets           which class to explain and how to score it, for every output kind
    predict           class probabilities and the top classes
"""
