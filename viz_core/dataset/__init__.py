"""Dataset: a model over many images at once, with bounded memory. Readers turn a folder, a ZIP,
a CSV or a built-in sample into labelled images; the engine runs the model (predictions and
class heatmaps) batch by batch, locally or on Ray with the same per-batch function; the
shortcut finder groups the heatmaps into the strategies a model uses for each class.

Modules:
    readers     folders, ZIPs, CSV label files and built-in samples -> labelled images
    engine      the local batch engine: predictions, heatmaps, small maps, files for the rest
    ray_engine  the same batches on a Ray cluster (or a local Ray), same results
    shortcuts   the shortcut finder: heatmaps clustered into each class's strategies
    atlas       the neuron atlas: each channel's top and bottom images, selectivity, on disk
    atlas_ray   the same atlas with its per-batch function on Ray Data actors
    concepts    CRAFT over a class's images in a dataset, kept in the disk cache
    tcav_run    TCAV over image sets: the class's, the concept's and the random images
    in_memory   images already in memory (a notebook's list) as a dataset
"""
