"""Adapters, one per framework: the only code in portable_dl that imports a framework.

Every adapter is a package of the same shape, so a reader who knows one knows where to
look in all:

``__init__.py``    ``create(device=None)``: the entry-point factory; imports the framework
                   only when called, and raises BackendUnavailable naming the extra
``namespace.py``   the array-API namespace ``xp``
``backend.py``     the Backend: devices, asarray/to_numpy, autodiff, compiler, synchronize

``_common/`` holds what is written once for every namespace, taking ``xp`` as an argument.
"""
