"""COPY data goes to the server in bounded pieces, each a run of whole lines."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from projections.postgres.bulk import copy_chunks

lines = st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b" ") + b"\n"))


@given(lines=lines, limit=st.integers(1, 120))
def test_pieces_are_whole_lines_within_the_limit_and_add_up(lines: list[bytes], limit: int) -> None:
    data = b"".join(lines)
    pieces = list(copy_chunks(data, limit))
    assert b"".join(pieces) == data
    for piece in pieces:
        assert piece.endswith(b"\n")
        # Over the limit only when a single line is: it cannot be cut.
        assert len(piece) <= limit or piece.count(b"\n") == 1
