"""A realistic demo timebank (``timebank demo``): its data (``data``), the plan drawn from it
(``plan``), the loader that carries the plan out through the services (``loader``) and what it
prints (``summary``)."""

from timebank.demo.loader import load_demo

__all__ = ["load_demo"]
