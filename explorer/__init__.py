"""LangSwarm Observability — the explorer: DuckDB over the Parquet telemetry store.

    from explorer import open_store
    store = open_store("sample_data")
    store.sql("SELECT name, count(*) FROM spans GROUP BY name")
    store.trace("4bf92f3577b34da6a3ce929d0e0e4736")

Query functions return pandas DataFrames and never import Streamlit, so notebooks, the CLI
(``python -m explorer``) and the Streamlit app (``streamlit run explorer``) share them.
"""

from explorer.errors import ExplorerError, QueryError, StoreNotFoundError, TraceNotFoundError
from explorer.store import Store, open_store
from explorer.tree import order_tree

__all__ = [
    "ExplorerError",
    "QueryError",
    "Store",
    "StoreNotFoundError",
    "TraceNotFoundError",
    "open_store",
    "order_tree",
]
