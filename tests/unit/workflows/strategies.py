"""Hypothesis strategies for requirement expressions."""

from __future__ import annotations

from hypothesis import strategies as st

from joblet.workflows.expressions import FINAL, And, Atom, Expr, Not, Or

STATUS_SETS = st.lists(st.sampled_from((*FINAL, "FINISHED")), min_size=1, max_size=3, unique=True)


def expressions(names: list[str]) -> st.SearchStrategy[Expr]:
    atoms = st.builds(
        lambda job, statuses, negated: Atom(job, tuple(statuses), negated),
        st.sampled_from(names),
        STATUS_SETS,
        st.booleans(),
    )
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            st.builds(Not, inner),
            st.builds(lambda xs: And(tuple(xs)), st.lists(inner, min_size=2, max_size=3)),
            st.builds(lambda xs: Or(tuple(xs)), st.lists(inner, min_size=2, max_size=3)),
        ),
        max_leaves=4,
    )
