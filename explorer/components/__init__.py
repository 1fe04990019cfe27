"""Browser components of the Streamlit app, for what Streamlit's own elements cannot draw fast enough.

Each is a :func:`streamlit.components.v2.component` with its JavaScript in a file beside its module, fed
plain data built by :mod:`explorer.figures` (so notebooks and tests read the same data without a browser).
"""

from explorer.components.waterfall import waterfall

__all__ = ["waterfall"]
