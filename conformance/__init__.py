"""The cross-backend conformance suite (``portable-dl conformance``): forward values,
gradients, broadcasting and optimizer trajectories of every installed backend against the
NumPy float64 reference and finite differences."""
