"""Graph: the calls between services, agents, tools and models over the time window (edges: calls, errors,
p95 latency), drawn as a network and listed as tables."""

import streamlit as st

from explorer import app_state, figures, queries

st.title("Graph")
store = app_state.require_store()
f = app_state.filters()

nodes, edges = app_state.query(queries.service_graph, service=f.service, **f.window())
st.caption(
    "A node per service, agent (gen_ai.agent.name), tool (gen_ai.tool.name / tool.name) and model (the requested "
    "model); an edge per parent → child span pair between nodes, across services through remote parents."
)
st.plotly_chart(figures.call_graph(nodes, edges), key="call_graph")
c1, c2 = st.columns([3, 2])
c1.markdown("**Edges**")
c1.dataframe(
    edges,
    hide_index=True,
    key="graph_edges",
    column_config={"p95_ms": st.column_config.NumberColumn("p95 ms", format="%.1f")},
)
c2.markdown("**Nodes**")
c2.dataframe(
    nodes,
    hide_index=True,
    key="graph_nodes",
    column_config={"p95_ms": st.column_config.NumberColumn("p95 ms", format="%.1f")},
)
