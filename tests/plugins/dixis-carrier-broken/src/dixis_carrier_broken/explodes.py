"""A plugin module that fails at import, as one with a missing dependency would."""

raise RuntimeError("the example plugin is broken on purpose")
