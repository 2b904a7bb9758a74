"""What every page and export works with, built once by ``explorer.web.app.create_app``."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.templating import Jinja2Templates

from explorer.index import Index
from explorer.prices import PriceTable
from explorer.settings import ExplorerSettings


@dataclass
class Explorer:
    """The web UI's state, kept on ``app.state.explorer``."""

    settings: ExplorerSettings
    index: Index
    prices: PriceTable
    templates: Jinja2Templates
