"""The registered dataset kinds and `--layout` names as lazy sequences, for argparse `choices`: a parser is
built for every command line, and looking the names up there would import the readers (numpy, PIL, scipy);
they are imported when argparse first needs a name (checking a value, writing help or an error)."""
from __future__ import annotations

from collections.abc import Iterator, Sequence


class RegisteredNames(Sequence[str]):
    """A live view of one of engine.data.datasets' name listings (`dataset_kinds`, `dataset_layouts`)."""

    def __init__(self, listing: str) -> None:
        self.listing = listing

    def names(self) -> tuple[str, ...]:
        from engine.data import datasets
        return getattr(datasets, self.listing)()

    def __getitem__(self, index):
        return self.names()[index]

    def __len__(self) -> int:
        return len(self.names())

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"RegisteredNames({self.listing!r})"


LAYOUT_CHOICES = RegisteredNames("dataset_layouts")
