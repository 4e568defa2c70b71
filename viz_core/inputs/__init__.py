"""Inputs: the images a user gives. Bytes from a file or an upload become a validated RGB array
(every bad input a clear error), resized as the model sees it; and the sample images that make
every page work offline.

Modules:
    intake   bytes -> ``LoadedImage`` (checked: format, size, pixels) -> ``ModelImage``
    samples  the bundled sample images: the shapes gallery and scikit-image's photos
"""
